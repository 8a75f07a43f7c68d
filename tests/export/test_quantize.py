"""``--quantize int8``: the visual detector's INT8 CPU profile, gated by its drift from FP32.

These really quantize (ONNX Runtime static quantization, calibrated on the face
crops the served MTCNN makes of scikit-image's photos) and really serve the
result through ONNX Runtime.
"""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import onnx
import pytest

from deepfake_export import quantize
from deepfake_export.__main__ import main as export_main
from deepfake_serving.model_configs import parse_pbtxt

STAGES = ["pnet", "rnet", "onet"]


#: The seeded demo weights drift past the shipped limit (0.06-0.24 against 0.05, see quantize.py), which
#: the refusal test relies on; the other tests serve them under a loose limit to see the served path.
LOOSE = 1.0


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    """One export of MTCNN and the visual detector with --quantize int8 into a scratch repository."""
    root = tmp_path_factory.mktemp("int8")
    common = ["--repository", str(root / "repo"), "--manifest", str(root / "manifest.json")]
    loose = dataclasses.replace(quantize.INT8_PROFILES["visual_detector"], max_prob_diff=LOOSE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(quantize.INT8_PROFILES, "visual_detector", loose)
        code = export_main([*common, "--quantize", "int8", "--only", "visual_detector", *STAGES])
    return root, common, code


def test_the_int8_visual_detector_is_served_with_its_precision_and_drift_recorded(int8_export) -> None:
    root, _, code = int8_export
    assert code == 0
    model = onnx.load(str(root / "repo" / "visual_detector" / "1" / "model.onnx"))
    assert {p.key: p.value for p in model.metadata_props}["deepfake.precision"] == "int8"
    assert any(node.op_type in ("QuantizeLinear", "QLinearConv") for node in model.graph.node)
    parameters = parse_pbtxt(root / "repo" / "visual_detector" / "config.pbtxt").parameters
    assert parameters["precision"].string_value == "int8"
    assert "QDQ" in parameters["quantization"].string_value
    entry = json.loads((root / "manifest.json").read_text())["visual_detector"]
    assert 0 < entry["int8_max_prob_diff"] <= LOOSE
    # MTCNN has no profile: its stages stay FP32.
    pnet = onnx.load(str(root / "repo" / "face_detector" / "1" / "pnet.onnx"))
    assert "deepfake.precision" not in {p.key for p in pnet.metadata_props}


def test_the_served_int8_graph_scores_a_real_face_crop(int8_export) -> None:
    root, _, _ = int8_export
    from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
    from deepfake_serving.testing import media

    crops = FaceDetector(root / "repo" / "face_detector" / "1", FaceSettings()).detect(
        media.encode(media.astronaut(), "JPEG", quality=90)
    )
    probs = quantize.fake_probs(
        quantize.session(root / "repo" / "visual_detector" / "1" / "model.onnx"), [crops.visual_input]
    )
    assert probs.shape == (1,) and 0 <= probs[0] <= 1


def test_an_int8_graph_past_its_drift_limit_is_refused_and_fp32_stays_served(int8_export, caplog) -> None:
    """The shipped limit, with the demo weights (which drift past it)."""
    root, common, _ = int8_export
    assert export_main([*common, "--only", "visual_detector"]) == 0  # back to FP32
    served = (root / "repo" / "visual_detector" / "1" / "model.onnx").read_bytes()
    caplog.set_level(logging.ERROR, logger="deepfake_export")
    assert export_main([*common, "--quantize", "int8", "--only", "visual_detector"]) == 2
    assert "differ from the FP32 graph's by" in caplog.text and "left as it was" in caplog.text
    assert (root / "repo" / "visual_detector" / "1" / "model.onnx").read_bytes() == served
    assert not list((root / "repo" / "visual_detector" / "1").glob("*.tmp"))
    parameters = parse_pbtxt(root / "repo" / "visual_detector" / "config.pbtxt").parameters
    assert "precision" not in parameters


def test_int8_without_the_served_mtcnn_is_refused_naming_the_missing_stages(tmp_path, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="deepfake_export")
    common = ["--repository", str(tmp_path / "repo"), "--manifest", str(tmp_path / "manifest.json")]
    assert export_main([*common, "--quantize", "int8", "--only", "visual_detector"]) == 2
    assert "pnet, rnet, onet.onnx are missing" in caplog.text
    assert not (tmp_path / "repo" / "visual_detector" / "1" / "model.onnx").exists()


def test_calibration_images_need_int8_and_a_folder(tmp_path) -> None:
    with pytest.raises(SystemExit):
        export_main(["--repository", str(tmp_path), "--calibration-images", str(tmp_path)])
    with pytest.raises(SystemExit):
        export_main(["--repository", str(tmp_path), "--quantize", "int8", "--calibration-images", str(tmp_path / "no")])


def test_held_out_inputs_are_not_the_calibration_inputs() -> None:
    calibration = [np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)]
    held = quantize.held_out(calibration, random=1)
    assert len(held) == 2 and not np.array_equal(held[0], calibration[0])
