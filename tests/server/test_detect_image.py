"""detect_image end to end: encoded bytes in, faces and scores out, on the real server."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from PIL import Image

from deepfake_contract import DETECT_IMAGE
from deepfake_serving.forensics import blocking_score, extract_batch, to_gray
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings, center_box
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing import media
from deepfake_serving.testing.forensics_reference import reference
from deepfake_serving.testing.triton import MODEL_REPOSITORY
from tests.server.helpers import infer

pytestmark = pytest.mark.server

OUTPUTS = list(DETECT_IMAGE.output_names)


def detect(client: grpcclient.InferenceServerClient, data: bytes) -> dict[str, np.ndarray]:
    tensor = grpcclient.InferInput("IMAGE", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    result = client.infer("detect_image", [tensor], outputs=[grpcclient.InferRequestedOutput(n) for n in OUTPUTS])
    return {name: result.as_numpy(name) for name in OUTPUTS}


def assert_matches_oracle(boxes: np.ndarray, data: bytes) -> None:
    """The served boxes are facenet-pytorch's confident ones on the same pixels (the file decoded
    by Pillow, EXIF orientation applied), one to one, largest first, within 1e-3 px."""
    from PIL import ImageOps

    from deepfake_serving.testing.facenet_oracle import oracle_detect

    image = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    expected, probs = oracle_detect(np.ascontiguousarray(image))
    expected = expected[probs > 0.9]
    expected = expected[
        np.argsort(-(expected[:, 2] - expected[:, 0]) * (expected[:, 3] - expected[:, 1]), kind="stable")
    ]
    assert boxes.shape == expected.shape
    np.testing.assert_allclose(boxes, expected, rtol=0, atol=1e-3)


def assert_well_formed(out: dict[str, np.ndarray]) -> int:
    n = len(out["FACE_BOXES"])
    assert n >= 1
    assert out["FACE_BOXES"].shape == (n, 4) and out["FORENSIC_FEATURES"].shape == (n, 12)
    for name in ("FACE_CONFIDENCE", "VISUAL_FAKE_PROB", "FORENSIC_FAKE_PROB"):
        assert out[name].shape == (n,)
    for name in ("VISUAL_FAKE_PROB", "FORENSIC_FAKE_PROB", "FAKE_PROB"):
        assert np.all((out[name] >= 0) & (out[name] <= 1)), name
    assert np.isfinite(out["FORENSIC_FEATURES"]).all()
    assert out["DEMO_WEIGHTS"].tolist() == [True]
    return n


def test_astronaut_has_one_face_matching_facenet(grpc_client):
    image = media.astronaut()
    data = media.encode(image, "PNG")
    out = detect(grpc_client, data)
    assert assert_well_formed(out) == 1
    assert out["FACE_FOUND"].tolist() == [True] and out["FACES_DROPPED"].tolist() == [0]
    assert out["FACE_CONFIDENCE"][0] > 0.9
    assert_matches_oracle(out["FACE_BOXES"], data)


def test_scores_equal_the_in_process_pipeline(grpc_client):
    """The server's numbers are the library's numbers: same crops, same models."""
    data = media.encode(media.astronaut(), "PNG")
    out = detect(grpc_client, data)
    faces = FaceDetector(MODEL_REPOSITORY / "face_detector" / "1", FaceSettings()).detect(data)
    np.testing.assert_allclose(out["FACE_BOXES"], faces.boxes, atol=1e-3)
    # Feature 12 is measured on the face region at the image's own pixel grid, not on the crop.
    features = extract_batch(faces.crops, blocking=faces.blocking).astype(np.float32)
    np.testing.assert_allclose(out["FORENSIC_FEATURES"], features, rtol=1e-5)
    visual = OnnxRunner(MODEL_REPOSITORY / "visual_detector" / "1" / "model.onnx", SessionSettings(2))
    expected_visual = visual.run_batch([{"input": faces.visual_input}], ["output"])[0]["output"][:, 1]
    np.testing.assert_allclose(out["VISUAL_FAKE_PROB"], expected_visual, atol=1e-5)
    fused = 0.7 * out["VISUAL_FAKE_PROB"] + 0.3 * out["FORENSIC_FAKE_PROB"]
    np.testing.assert_allclose(out["FAKE_PROB"], [fused.max()], atol=1e-6)


def test_a_2x2_grid_has_four_faces_matching_facenet(grpc_client):
    data = media.encode(media.grid_2x2(media.astronaut()), "JPEG", quality=95)
    out = detect(grpc_client, data)
    assert assert_well_formed(out) == 4
    assert_matches_oracle(out["FACE_BOXES"], data)
    areas = (out["FACE_BOXES"][:, 2] - out["FACE_BOXES"][:, 0]) * (out["FACE_BOXES"][:, 3] - out["FACE_BOXES"][:, 1])
    assert list(areas) == sorted(areas, reverse=True)


def test_an_image_without_faces_is_scored_whole_and_says_so(grpc_client):
    image = media.no_face_photo()
    out = detect(grpc_client, media.encode(image, "JPEG"))
    assert assert_well_formed(out) == 1
    assert out["FACE_FOUND"].tolist() == [False]
    assert out["FACE_CONFIDENCE"].tolist() == [0.0]
    np.testing.assert_array_equal(out["FACE_BOXES"], center_box(*image.shape[:2]))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_every_accepted_format_finds_the_face(grpc_client, fmt):
    image = Image.fromarray(media.astronaut())
    if fmt == "GIF":
        image = image.quantize(256)
    out = detect(grpc_client, media.encode(image, fmt))
    assert out["FACE_FOUND"].tolist() == [True] and len(out["FACE_BOXES"]) == 1


def test_exif_orientation_is_applied_before_detection(grpc_client):
    image = media.astronaut()
    # Stored rotated; EXIF orientation 6 says "rotate 90 degrees clockwise to view".
    stored = Image.fromarray(np.rot90(image, k=1).copy())
    exif = Image.Exif()
    exif[0x0112] = 6
    data = media.encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    out = detect(grpc_client, data)
    assert out["FACE_FOUND"].tolist() == [True]
    assert_matches_oracle(out["FACE_BOXES"], data)
    # Upright: the face is in the top half, where the unrotated image has it.
    assert out["FACE_BOXES"][0, 3] < image.shape[0] / 2


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "I;16"])
def test_other_pixel_formats_are_converted(grpc_client, mode):
    image = Image.fromarray(media.astronaut())
    if mode == "I;16":
        converted = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
        fmt = "PNG"
    else:
        converted = image.convert(mode)
        fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = detect(grpc_client, media.encode(converted, fmt))
    assert_well_formed(out)
    assert out["FACE_FOUND"].tolist() == [True]


@pytest.mark.parametrize("subset", [["FAKE_PROB"], ["FAKE_PROB", "DEMO_WEIGHTS"], ["FACE_BOXES", "VISUAL_FAKE_PROB"]])
def test_any_subset_of_outputs_can_be_requested(grpc_client, subset):
    tensor = grpcclient.InferInput("IMAGE", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([media.encode(media.astronaut(), "JPEG")], dtype=object))
    result = grpc_client.infer("detect_image", [tensor], outputs=[grpcclient.InferRequestedOutput(n) for n in subset])
    full = detect(grpc_client, media.encode(media.astronaut(), "JPEG"))
    assert {o.name for o in result.get_response().outputs} == set(subset)  # what was asked, nothing else
    for name in subset:
        np.testing.assert_array_equal(result.as_numpy(name), full[name], err_msg=name)


def test_http_gives_the_same_answer_as_grpc(grpc_client, http_client):
    data = media.encode(media.astronaut(), "JPEG")
    tensor = httpclient.InferInput("IMAGE", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object), binary_data=True)
    result = http_client.infer("detect_image", [tensor])
    np.testing.assert_allclose(result.as_numpy("FAKE_PROB"), detect(grpc_client, data)["FAKE_PROB"], atol=1e-6)


def _batch_counts(client, model: str) -> tuple[int, dict[int, int]]:
    """(inference count, executions per batch size) from Triton's statistics of ``model``."""
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    per_size = {int(b["batch_size"]): int(b["compute_infer"].get("count", 0)) for b in stats.get("batch_stats", [])}
    return int(stats.get("inference_count", 0)), per_size


def test_concurrent_single_face_requests_are_merged_into_one_execution(triton, grpc_client):
    """Each request carries one face, so an execution of batch size 2 or more merged
    different requests: batching *across* requests, not just the faces of one image."""
    image = media.encode(media.astronaut(), "JPEG")
    # visual_detector only: forensic_classifier (0.5 ms a batch) sits behind the forensic denoise,
    # whose requests arrive spaced out; it merged nothing in one CI run of 48 requests.
    # Its dynamic batching is tested with direct concurrent calls in test_detectors.py.
    models = ("visual_detector",)
    before = {model: _batch_counts(grpc_client, model) for model in models}
    clients, per_client = 16, 3

    def worker() -> None:
        client = grpcclient.InferenceServerClient(triton.grpc_url)
        try:
            for _ in range(per_client):
                assert detect(client, image)["FACE_FOUND"].tolist() == [True]
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for model in models:
        # Triton counts a request just after answering it: poll until all are in.
        deadline = time.monotonic() + 10
        while (after := _batch_counts(grpc_client, model))[0] - before[model][0] < clients * per_client:
            assert time.monotonic() < deadline, f"{model}: statistics never counted every request"
            time.sleep(0.1)
        assert after[0] - before[model][0] == clients * per_client, model  # one face per image
        merged = {size: count - before[model][1].get(size, 0) for size, count in after[1].items() if size >= 2}
        assert sum(merged.values()) > 0, f"{model}: no execution merged two requests ({after[1]})"


def test_the_forensic_score_is_the_classifier_on_the_returned_features(grpc_client):
    """FORENSIC_FAKE_PROB of each face is forensic_classifier's fake column on that face's
    FORENSIC_FEATURES, and FAKE_PROB the maximum of the fused face scores (four different faces)."""
    out = detect(grpc_client, media.encode(media.grid_2x2(media.astronaut()), "JPEG"))
    tensor = grpcclient.InferInput("input", list(out["FORENSIC_FEATURES"].shape), "FP32")
    tensor.set_data_from_numpy(out["FORENSIC_FEATURES"])
    classified = grpc_client.infer("forensic_classifier", [tensor]).as_numpy("output")
    np.testing.assert_allclose(out["FORENSIC_FAKE_PROB"], classified[:, 1], atol=1e-6)
    fused = 0.7 * out["VISUAL_FAKE_PROB"] + 0.3 * out["FORENSIC_FAKE_PROB"]
    np.testing.assert_allclose(out["FAKE_PROB"], [fused.max()], atol=1e-6)


def test_forensic_feature_12_is_face_detectors_native_grid_blockiness(grpc_client):
    """On a JPEG, FORENSIC_FEATURES column 11 is face_detector's FACE_BLOCKING (the face region
    before its resize to 224), features 1-11 are the reference's on the crop, and the crop's own
    blocking score, which the stretched 8x8 grid makes meaningless, is not what is used."""
    data = media.encode(media.astronaut(), "JPEG", quality=60)
    out = detect(grpc_client, data)
    served = infer(grpc_client, "face_detector", [("IMAGE", np.array([data], dtype=object), "BYTES")])
    blocking, crops = served.as_numpy("FACE_BLOCKING"), served.as_numpy("FACE_CROPS")
    assert blocking.dtype == np.float32 and blocking.shape == (len(crops),) == (len(out["FACE_BOXES"]),)
    np.testing.assert_array_equal(out["FORENSIC_FEATURES"][:, 11], blocking)
    faces = FaceDetector(MODEL_REPOSITORY / "face_detector" / "1", FaceSettings()).detect(data)
    np.testing.assert_array_equal(blocking, faces.blocking)
    for row, crop, value in zip(out["FORENSIC_FEATURES"], crops, blocking, strict=True):
        expected = np.array(list(reference(crop, blocking_score=float(value)).values()), np.float64)
        np.testing.assert_allclose(row, expected, rtol=1e-4, atol=1e-6)
        assert abs(value - blocking_score(to_gray(crop))) > 1.0  # 2.57 against 0.85 on the crop


def test_forensic_features_called_directly_computes_feature_12_from_the_crop_when_not_given(grpc_client):
    crops = (
        FaceDetector(MODEL_REPOSITORY / "face_detector" / "1", FaceSettings())
        .detect(media.encode(media.astronaut(), "JPEG", quality=60))
        .crops
    )
    alone = infer(grpc_client, "forensic_features", [("FACE_CROPS", crops, "UINT8")]).as_numpy("FORENSIC_FEATURES")
    assert alone[0, 11] == np.float32(blocking_score(to_gray(crops[0])))
    given = np.array([7.25], np.float32)
    tensors = [("FACE_CROPS", crops, "UINT8"), ("FACE_BLOCKING", given, "FP32")]
    with_blocking = infer(grpc_client, "forensic_features", tensors).as_numpy("FORENSIC_FEATURES")
    assert with_blocking[0, 11] == given[0]
    np.testing.assert_array_equal(with_blocking[:, :11], alone[:, :11])
