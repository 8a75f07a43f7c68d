"""Framework-free building blocks of the deepfake-detection Triton deployment.

Everything here is plain Python + NumPy (plus OpenCV/Pillow/PyAV for media) so
that unit tests exercise it without a server, and the Python-backend
``model.py`` files in ``model_repository/`` stay thin wrappers around it.
"""
