"""Benchmarks (not tests), run as modules from the repository root: ``python -m perf.suite``.

What they share with the tests (the real ``tritonserver`` on free ports, test
media, perf_analyzer) is :mod:`deepfake_serving.testing`. ``locustfile.py``
is the exception: Locust loads it as a file, in its own venv (perf/.venv).
"""
