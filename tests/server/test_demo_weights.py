"""``DEMO_WEIGHTS`` in every pipeline's answer, read from the detectors' configs.

The export marks a detector ``weights: trained`` when it was built from a
checkpoint (``tests/export/test_checkpoints.py`` proves that marking); here the
served repository's detector configs carry that marking, and the real server
must answer ``DEMO_WEIGHTS=false`` where every detector a pipeline uses is
trained, ``true`` where any is still demo, and log the warning only then.
``detect_image`` uses only its real detector when the other one is demo, so
its verdict is real (and ``DEMO_WEIGHTS`` false) with either one trained.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from deepfake_contract import DETECTORS
from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import MODEL_REPOSITORY, start_triton
from tests.server.helpers import infer

pytestmark = pytest.mark.server

INPUTS = {
    "detect_image": ("IMAGE", lambda: media.encode(media.astronaut())),
    "detect_audio": ("AUDIO", lambda: media_av.audio_clip("wav", 5.0)),
    "detect_video": (
        "VIDEO",
        lambda: media_av.encode_video(media_av.moving_frames(media.astronaut(), 16, 320, 240), 8, "mp4_h264_aac"),
    ),
}


def _repository(root, demo: set[str]):
    """The served repository, with every detector but those in ``demo`` marked trained."""
    repository = root / "repository"
    repository.mkdir()
    detectors = {spec.name for spec in DETECTORS}
    for model in sorted(p for p in MODEL_REPOSITORY.iterdir() if (p / "config.pbtxt").exists()):
        if model.name not in detectors or model.name in demo:
            (repository / model.name).symlink_to(model, target_is_directory=True)
            continue
        (repository / model.name).mkdir()
        (repository / model.name / "1").symlink_to(model / "1", target_is_directory=True)
        config = (model / "config.pbtxt").read_text()
        marked, count = re.subn(
            r'(key: "weights"\s*value \{\s*string_value: )"demo"', r'\1"trained"', config
        )  # fmt: skip
        assert count == 1, f"{model.name}: no weights parameter to mark"
        (repository / model.name / "config.pbtxt").write_text(marked)
    return repository


def _answers(server) -> dict[str, object]:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        return {
            model: infer(client, model, [(name, np.array([make()], dtype=object), "BYTES")])
            for model, (name, make) in INPUTS.items()
        }
    finally:
        client.close()


@pytest.mark.parametrize(
    ("demo", "expected"),
    [
        (set(), {"detect_image": False, "detect_audio": False, "detect_video": False}),
        ({"visual_detector"}, {"detect_image": False, "detect_audio": False, "detect_video": True}),
        (
            {"visual_detector", "forensic_classifier"},
            {"detect_image": True, "detect_audio": False, "detect_video": True},
        ),
    ],
    ids=["all_trained", "visual_still_demo", "both_image_detectors_demo"],
)
def test_demo_weights_follow_the_detectors_each_pipeline_uses(tmp_path, demo, expected):
    server = start_triton(tmp_path, repository=_repository(tmp_path, demo))
    try:
        answers = _answers(server)
        log = server.log_path.read_text(errors="replace")
    finally:
        server.stop()
    assert {model: bool(result.as_numpy("DEMO_WEIGHTS")[0]) for model, result in answers.items()} == expected
    named = {model: result.as_numpy("DEMO_MODELS")[0].decode() for model, result in answers.items()}
    for model, flag in expected.items():
        assert bool(named[model]) == flag, f"{model} names {named[model]!r} with DEMO_WEIGHTS {flag}"
    # detect_image names a demo detector only when its score entered FAKE_PROB.
    image_named = {frozenset(): "", frozenset({"visual_detector"}): ""}
    assert named["detect_image"] == image_named.get(frozenset(demo), "visual_detector,forensic_classifier")
    image = answers["detect_image"]
    visual, forensic = image.as_numpy("VISUAL_FAKE_PROB"), image.as_numpy("FORENSIC_FAKE_PROB")
    fused = {
        frozenset(): np.max(0.7 * visual + 0.3 * forensic),
        frozenset({"visual_detector"}): np.max(forensic),  # the demo visual detector is left out
        frozenset({"visual_detector", "forensic_classifier"}): np.max(0.7 * visual + 0.3 * forensic),
    }[frozenset(demo)]
    assert float(image.as_numpy("FAKE_PROB")[0]) == pytest.approx(float(fused), abs=1e-6)
    for model, flag in expected.items():
        warned = re.search(rf"{model}:? answers DEMO_WEIGHTS=true", log) is not None
        assert warned == flag, f"{model}: warning in the log is {warned}, DEMO_WEIGHTS is {flag}"
