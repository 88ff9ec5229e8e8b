"""edgecls.exporters: Keras -> ONNX conversion, quantization and validation.

Sits between the toolkit and the runtime: it may import edgecls.runtime, never the toolkit.
"""
