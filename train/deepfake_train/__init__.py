"""Training of the four detectors, on the serving code's own preprocessing (``python -m deepfake_train``)."""

__version__ = "0.2.0"
