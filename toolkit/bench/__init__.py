"""Speed/accuracy benchmark across formats (Keras, TFLite, ONNX fp32/int8) and devices."""
