"""handoff-edge: load a verified Handoff bundle, predict with onnxruntime, decide locally."""

__version__ = "0.1.0"
