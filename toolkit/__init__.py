"""edgecls: train, export and run small image classifiers at the edge.

Kept import-light on purpose: `import edgecls.runtime` passes through here and must not
pull in TensorFlow.
"""

__version__ = "0.1.0"
