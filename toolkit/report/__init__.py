"""`edgecls report`: a self-contained HTML page of a model's training, errors and speed."""
