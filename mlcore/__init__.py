"""Handoff's ML core: data, training, artifacts, prediction, interpretation and OOD scoring.

Plain Python + fastai/torch. This package never imports Django or Celery (a test checks it),
and importing it does no work: models and data are only touched when a function is called.
"""

__version__ = "0.1.0"
