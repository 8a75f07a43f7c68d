"""PyTorch definitions of the served networks and their export to ONNX.

Run ``python -m deepfake_export --help``. Only this package imports torch; the
serving path (``deepfake_serving`` and ``model_repository``) never does.
"""
