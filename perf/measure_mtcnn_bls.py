"""MTCNN in-process (ONNX Runtime inside ``face_detector``) against MTCNN through BLS.

The choice between the two is made by measurement (``perf/RESULTS.md``). This
builds a scratch repository next to the project's ``face_detector`` with:

- ``mtcnn_pnet``, ``mtcnn_rnet``, ``mtcnn_onet``: the same three ONNX files as
  Triton models (R/O-Net with dynamic batching, so the candidate boxes of
  concurrent images can share an execution);
- ``face_detector_bls``: the same Python model code path
  (``deepfake_serving.image_pipeline.FaceDetector``) with the three stages
  injected as BLS calls instead of ONNX Runtime sessions;

starts the real server on it, checks that both give the same boxes, and runs
the same closed-loop load (``perf/loadgen.py``) on each at concurrency 1 and 4:

    .venv/bin/python -m perf.measure_mtcnn_bls --seconds 20
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

from deepfake_serving.testing import media
from deepfake_serving.testing.triton import MODEL_REPOSITORY, start_triton
from perf.loadgen import run_load

STAGES = {
    # name: (input dims, max_batch_size, outputs {name: dims})
    "pnet": ([-1, 3, -1, -1], 0, {"reg": [-1, 4, -1, -1], "prob": [-1, 2, -1, -1]}),
    "rnet": ([3, 24, 24], 512, {"reg": [4], "prob": [2]}),
    "onet": ([3, 48, 48], 512, {"reg": [4], "landmarks": [10], "prob": [2]}),
}

BLS_MODEL = '''
"""face_detector with MTCNN's stages called through BLS (perf/measure_mtcnn_bls.py)."""
import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.triton_python import respond, single_bytes

OUTPUTS = {"pnet": ["reg", "prob"], "rnet": ["reg", "prob"], "onet": ["reg", "landmarks", "prob"]}


def stage(name):
    def run(x):
        request = pb_utils.InferenceRequest(
            model_name=f"mtcnn_{name}",
            inputs=[pb_utils.Tensor("input", np.ascontiguousarray(x, dtype=np.float32))],
            requested_output_names=OUTPUTS[name],
        )
        response = request.exec()
        if response.has_error():
            raise RuntimeError(response.error().message())
        return [pb_utils.get_output_tensor_by_name(response, out).as_numpy() for out in OUTPUTS[name]]
    return run


class TritonPythonModel:
    def initialize(self, args):
        nets = (stage("pnet"), stage("rnet"), stage("onet"))
        self.detector = FaceDetector(None, FaceSettings(), nets=nets)

    def execute(self, requests):
        return respond(pb_utils, "face_detector_bls", requests, self._detect)

    def _detect(self, request):
        faces = self.detector.detect(single_bytes(pb_utils, request, "IMAGE"))
        return {"FACE_BOXES": faces.boxes, "FACE_CONFIDENCE": faces.confidence}
'''


def _dims(dims: list[int]) -> str:
    return "[ " + ", ".join(map(str, dims)) + " ]"


def stage_config(stage: str) -> str:
    """``config.pbtxt`` serving one MTCNN stage's ONNX file as a Triton model."""
    dims, max_batch, outputs = STAGES[stage]
    outs = ",\n".join(f'  {{ name: "{n}", data_type: TYPE_FP32, dims: {_dims(d)} }}' for n, d in outputs.items())
    batching = "dynamic_batching { }\n" if max_batch else ""
    return (
        f'name: "mtcnn_{stage}"\nbackend: "onnxruntime"\nmax_batch_size: {max_batch}\n'
        f'input [ {{ name: "input", data_type: TYPE_FP32, dims: {_dims(dims)} }} ]\n'
        f"output [\n{outs}\n]\n"
        # One thread per instance, as face_detector's in-process sessions (single-threaded ONNX Runtime);
        # PNet, the costly stage, gets one instance per face_detector instance.
        f"instance_group [ {{ count: {2 if stage == 'pnet' else 1}, kind: KIND_CPU }} ]\n"
        f"{batching}"
        'parameters [ { key: "intra_op_thread_count", value: { string_value: "1" } } ]\n'
    )


def build_repository(root: Path) -> Path:
    """Build the scratch repository under ``root``: both face detectors and the three stage models."""
    repository = root / "repository"
    repository.mkdir()
    (repository / "face_detector").symlink_to(MODEL_REPOSITORY / "face_detector")
    for stage in STAGES:
        model = repository / f"mtcnn_{stage}"
        (model / "1").mkdir(parents=True)
        (model / "1" / "model.onnx").symlink_to(MODEL_REPOSITORY / "face_detector" / "1" / f"{stage}.onnx")
        (model / "config.pbtxt").write_text(stage_config(stage))
    bls = repository / "face_detector_bls"
    (bls / "1").mkdir(parents=True)
    (bls / "1" / "model.py").write_text(BLS_MODEL)
    config = (MODEL_REPOSITORY / "face_detector" / "config.pbtxt").read_text()
    header, _, _ = config.partition("output [")
    (bls / "config.pbtxt").write_text(
        header.replace('name: "face_detector"', 'name: "face_detector_bls"')
        + 'output [\n  { name: "FACE_BOXES", data_type: TYPE_FP32, dims: [ -1, 4 ] },\n'
        + '  { name: "FACE_CONFIDENCE", data_type: TYPE_FP32, dims: [ -1 ] }\n]\n'
        + "instance_group [ { count: 2, kind: KIND_CPU } ]\n"
    )
    return repository


def boxes(client: grpcclient.InferenceServerClient, model: str, data: bytes) -> np.ndarray:
    """``FACE_BOXES`` of one image from ``model``."""
    tensor = grpcclient.InferInput("IMAGE", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    return client.infer(model, [tensor], outputs=[grpcclient.InferRequestedOutput("FACE_BOXES")]).as_numpy("FACE_BOXES")


def main() -> None:
    """Check both face detectors find the same boxes, then compare their throughput and latency."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per model and concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    images = {
        "astronaut 512x512, 1 face": media.encode(media.astronaut(), "JPEG"),
        "2x2 grid 1024x1024, 4 faces": media.encode(media.grid_2x2(media.astronaut()), "JPEG"),
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = start_triton(Path(tmp), repository=build_repository(Path(tmp)))
        try:
            client = grpcclient.InferenceServerClient(server.grpc_url)
            for label, data in images.items():
                a, b = boxes(client, "face_detector", data), boxes(client, "face_detector_bls", data)
                assert a.shape == b.shape and np.allclose(a, b, atol=1e-3), (label, a, b)
            print("Same boxes from both on every image.\n")
            print("| image | model | concurrency | images/s | p50 ms | p99 ms |")
            print("|---|---|---:|---:|---:|---:|")
            for label, data in images.items():
                for concurrency in args.concurrency:
                    for model in ("face_detector", "face_detector_bls"):

                        def make_call(model=model, data=data):
                            own = grpcclient.InferenceServerClient(server.grpc_url)
                            return lambda: boxes(own, model, data)

                        result = run_load(make_call, concurrency, args.seconds, warmup_s=2.0)
                        assert result.errors == 0, f"{model}: {result.errors} errors"
                        print(
                            f"| {label} | {model} | {concurrency} | {result.throughput:.2f} | "
                            f"{result.percentile(50):.1f} | {result.percentile(99):.1f} |",
                            flush=True,
                        )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
