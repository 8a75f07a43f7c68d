"""The visual detector's preprocessing: the default is the project's own, and it travels in the config intact."""

from __future__ import annotations

import numpy as np
import pytest

from deepfake_serving.faces import normalize_for_visual
from deepfake_serving.fusion import ImageFusion
from deepfake_serving.model_configs import detector_config, to_pbtxt, write_detector_configs
from deepfake_serving.provenance import any_demo
from deepfake_serving.visual_preprocessing import IMAGENET, VisualPreprocessing, served_preprocessing

CROPS = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)


def test_the_default_is_the_imagenet_normalization_bit_for_bit() -> None:
    assert np.array_equal(IMAGENET.apply(CROPS), normalize_for_visual(CROPS))


@pytest.mark.parametrize(
    "steps",
    [
        IMAGENET,
        VisualPreprocessing(resize=(224, 224), resample=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
        VisualPreprocessing(resize=(256, 256), resample=3, crop=(224, 224)),
    ],
)
def test_the_steps_survive_the_config_written_by_the_export(steps, tmp_path) -> None:
    from deepfake_contract import VISUAL_DETECTOR

    write_detector_configs(tmp_path, {}, {VISUAL_DETECTOR.name: steps.to_parameters()}, only=[VISUAL_DETECTOR.name])
    assert served_preprocessing(tmp_path) == steps
    np.testing.assert_array_equal(served_preprocessing(tmp_path).apply(CROPS), steps.apply(CROPS))


def test_a_resize_to_another_size_than_the_detectors_input_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ends at 192x192"):
        VisualPreprocessing(resize=(192, 192))


def test_an_unreadable_visual_detector_config_fails_the_load_instead_of_defaulting(tmp_path) -> None:
    with pytest.raises(OSError):
        served_preprocessing(tmp_path)


def test_pretrained_weights_count_as_real_and_unknown_ones_as_demo(tmp_path) -> None:
    from deepfake_contract import FORENSIC_CLASSIFIER, VISUAL_DETECTOR

    for spec, kind in ((VISUAL_DETECTOR, "pretrained"), (FORENSIC_CLASSIFIER, "demo")):
        (tmp_path / spec.name).mkdir()
        (tmp_path / spec.name / "config.pbtxt").write_text(to_pbtxt(detector_config(spec, weights=kind)))
    assert not any_demo(tmp_path, [VISUAL_DETECTOR.name])
    assert any_demo(tmp_path, [VISUAL_DETECTOR.name, FORENSIC_CLASSIFIER.name])
    assert any_demo(tmp_path, ["no_such_model"])


def test_image_fusion_leaves_a_demo_detector_out_when_the_other_is_real() -> None:
    rule = ImageFusion(0.7, 0.3)
    visual, forensic = np.array([0.9, 0.2]), np.array([0.1, 0.8])
    assert rule.trusting(True, False).image_score(visual, forensic) == pytest.approx(0.9)
    assert rule.trusting(False, True).image_score(visual, forensic) == pytest.approx(0.8)
    assert rule.trusting(True, True) == rule and rule.trusting(False, False) == rule
