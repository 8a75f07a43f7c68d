"""The four ONNX detectors, served by the real Triton (gRPC and HTTP)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from deepfake_contract import DETECTORS, VISUAL_DETECTOR, ModelSpec
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing.triton import MODEL_REPOSITORY

pytestmark = pytest.mark.server

ALL_MODELS = [spec.name for spec in DETECTORS]


def sample(spec: ModelSpec, batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *spec.inputs[0].dims), dtype=np.float32)


def in_process(spec: ModelSpec, x: np.ndarray) -> dict[str, np.ndarray]:
    runner = OnnxRunner(MODEL_REPOSITORY / spec.name / "1" / "model.onnx", SessionSettings(intra_op_threads=2))
    return runner.run_batch([{"input": x}], [t.name for t in spec.outputs])[0]


def grpc_infer(client: grpcclient.InferenceServerClient, spec: ModelSpec, x: np.ndarray, dtype: str = "FP32"):
    tensor = grpcclient.InferInput("input", list(x.shape), dtype)
    tensor.set_data_from_numpy(x)
    return client.infer(spec.name, [tensor], outputs=[grpcclient.InferRequestedOutput("output")])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_detector_is_ready_and_marked_as_demo(grpc_client, name):
    assert grpc_client.is_model_ready(name)
    config = grpc_client.get_model_config(name, as_json=True)["config"]
    assert config["parameters"]["weights"]["string_value"] == "demo"


@pytest.mark.parametrize("spec", DETECTORS, ids=ALL_MODELS)
def test_grpc_output_equals_in_process_onnx_runtime(grpc_client, spec):
    x = sample(spec, 2 if spec.max_batch_size >= 2 else 1, seed=3)
    got = grpc_infer(grpc_client, spec, x).as_numpy("output")
    expected = in_process(spec, x)["output"]
    assert got.shape == (len(x), 2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("spec", DETECTORS, ids=ALL_MODELS)
def test_http_output_equals_in_process_onnx_runtime(http_client, spec):
    x = sample(spec, 1, seed=4)
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = http_client.infer(spec.name, [tensor])
    expected = in_process(spec, x)
    for name in ("output", "logits"):
        np.testing.assert_allclose(result.as_numpy(name), expected[name], rtol=0, atol=1e-5)


def test_scores_depend_on_the_input(grpc_client):
    """Demo weights must still behave like a network, not a constant."""
    x = sample(VISUAL_DETECTOR, 4, seed=11)
    probs = grpc_infer(grpc_client, VISUAL_DETECTOR, x).as_numpy("output")
    assert np.ptp(probs[:, 1]) > 1e-4


def test_non_finite_values_are_refused_and_the_batch_keeps_serving(grpc_client):
    spec = DETECTORS[1]  # forensic_classifier: cheap, so many requests share a batch
    bad = np.full((1, 12), np.nan, dtype=np.float32)
    good = sample(spec, 1, seed=5)
    errors: list[str] = []
    results: list[np.ndarray] = []

    def call(x: np.ndarray) -> None:
        try:
            results.append(grpc_infer(grpc_client, spec, x).as_numpy("output"))
        except InferenceServerException as error:
            errors.append(error.message())

    threads = [threading.Thread(target=call, args=(bad if i % 2 else good,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 8 and all("input: contains NaN or Inf" in e for e in errors)
    assert len(results) == 8
    for got in results:
        np.testing.assert_allclose(got, in_process(spec, good)["output"], atol=1e-5)


def test_concurrent_clients_are_batched(triton, grpc_client):
    """16 concurrent clients: the dynamic batcher runs fewer executions than inferences."""
    name = VISUAL_DETECTOR.name
    before = grpc_client.get_inference_statistics(name, as_json=True)["model_stats"][0]
    x = sample(VISUAL_DETECTOR, 1, seed=6)

    def worker() -> None:
        client = grpcclient.InferenceServerClient(triton.grpc_url)
        try:
            for _ in range(4):
                grpc_infer(client, VISUAL_DETECTOR, x)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Triton counts a request just after answering it: poll until all 64 are in.
    deadline = time.monotonic() + 10
    while True:
        after = grpc_client.get_inference_statistics(name, as_json=True)["model_stats"][0]
        inferences = int(after["inference_count"]) - int(before.get("inference_count", 0))
        if inferences >= 64 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    executions = int(after["execution_count"]) - int(before.get("execution_count", 0))
    assert inferences == 64
    assert executions < inferences, f"{executions} executions for {inferences} inferences: no batching"
