"""Keras training (imports TensorFlow: only the commands that train or evaluate load this)."""
