"""The model zoo shipped with edgecls: each folder holds one model's card, Keras source and exported variants.

Package data, found with importlib.resources by edgecls.runtime.store; user commands never write here.
"""
