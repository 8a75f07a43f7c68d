"""What the tests (``tests/``) and the benchmarks (``perf/``) share.

Part of the project so both import it the same way, with no import-path
edits: ``tests`` and ``perf`` import from here, never from each other.

* :mod:`~deepfake_serving.testing.triton`: the real ``tritonserver`` on free ports;
* :mod:`~deepfake_serving.testing.media`, :mod:`~deepfake_serving.testing.media_av`:
  images, audio and video encoded on the fly;
* :mod:`~deepfake_serving.testing.forensics_reference`: the reference forensic
  features, verbatim (the oracle of ``deepfake_serving.forensics``);
* :mod:`~deepfake_serving.testing.facenet_oracle`: facenet-pytorch's own MTCNN
  (the oracle of ``deepfake_serving.mtcnn`` and the baseline of ``perf/measure_mtcnn.py``);
* :mod:`~deepfake_serving.testing.perf_analyzer`: one perf_analyzer runner
  (input data, command line, its CSV);
* :mod:`~deepfake_serving.testing.benchmark`: the benchmark suite's pure parts
  (settings, the no-batching variant repository, batch statistics, tables, ratios).

Nothing is imported here: the modules need the test extra (scikit-image, torch, facenet-pytorch) or
the tritonserver binary, which the serving path does not.
"""
