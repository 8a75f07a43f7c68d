"""deepfake-eval's pure parts: the fusion fit and the in-place config edits (the served run is in tests/train)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from deepfake_client.evaluate import fit_fusion, logistic_fit, write_parameters
from deepfake_serving.model_configs import parse_pbtxt
from deepfake_serving.testing.triton import MODEL_REPOSITORY


def test_the_logistic_fit_equals_scikit_learns() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (200, 3))
    y = (x @ [3.0, -1.0, 0.5] + rng.normal(0, 0.5, 200) > 1.2).astype(float)
    l2 = 1e-2
    coefficients, intercept = logistic_fit(x, y, l2=l2)
    oracle = LogisticRegression(C=1 / (l2 * len(y)), tol=1e-12, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(coefficients, oracle.coef_[0], atol=1e-5)
    assert intercept == pytest.approx(oracle.intercept_[0], abs=1e-5)


def _records(media: str, parts: dict[str, np.ndarray], labels: np.ndarray) -> list[dict]:
    return [
        {"status": "ok", "media": media, "label": int(label), "scores": {k: float(v[i]) for k, v in parts.items()}}
        for i, label in enumerate(labels)
    ]


def test_the_fit_weights_the_part_that_separates_and_drops_the_one_that_misleads() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    visual = np.clip(labels * 0.6 + rng.normal(0.2, 0.15, 300), 0, 1)  # informative
    forensic = np.clip(1 - labels * 0.3 + rng.normal(0, 0.2, 300) - 0.5, 0, 1)  # inversely related: weight 0
    fit = fit_fusion(_records("image", {"visual": visual, "forensic": forensic}, labels), "image")
    assert fit["weights"] == {"visual_weight": 1.0, "forensic_weight": 0.0} and fit["files"] == 300
    temporal = np.clip(labels * 0.5 + rng.normal(0.25, 0.2, 300), 0, 1)
    frames = np.clip(labels * 0.5 + rng.normal(0.25, 0.2, 300), 0, 1)
    audio = rng.uniform(0, 1, 300)  # noise
    video = fit_fusion(_records("video", {"temporal": temporal, "frames": frames, "audio": audio}, labels), "video")
    weights = video["weights"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert weights["audio_weight"] < 0.1 < weights["temporal_weight"] and weights["frame_weight"] > 0.3
    with pytest.raises(ValueError, match="audio has no fusion weights to fit"):
        fit_fusion([], "audio")
    with pytest.raises(ValueError, match="needs real and fake image files scored by every part; got 0"):
        fit_fusion(_records("image", {"visual": visual}, labels), "image")


def test_parameters_are_rewritten_in_place_keeping_the_comments(tmp_path) -> None:
    config = tmp_path / "config.pbtxt"
    shutil.copyfile(MODEL_REPOSITORY / "image_fusion" / "config.pbtxt", config)
    write_parameters(config, {"visual_weight": "0.25", "forensic_weight": "0.75", "fusion_source": 'fit on "val"'})
    parameters = {k: v.string_value for k, v in parse_pbtxt(config).parameters.items()}
    assert parameters["visual_weight"] == "0.25" and parameters["forensic_weight"] == "0.75"
    assert parameters["fusion_source"] == "fit on 'val'" and parameters["threshold"] == "0.5"
    assert "# The decision threshold" in config.read_text()
    with pytest.raises(ValueError, match='expected one { key: "no_such_key", ... } parameter line, found 0'):
        write_parameters(config, {"no_such_key": "1"})


def test_the_report_gives_file_frame_and_video_figures_and_lists_what_was_refused() -> None:
    from deepfake_client.evaluate import headline, report
    from deepfake_client.metrics import summarize, video_scores

    rng = np.random.default_rng(2)
    records = []
    for i in range(20):
        label = i % 2
        frames = np.clip(label * 0.4 + rng.uniform(0, 0.6, 16), 0, 1).tolist()
        records.append(
            {
                "path": f"v{i}.mp4",
                "label": label,
                "status": "ok",
                "media": "video",
                "threshold": 0.4,
                "scores": {"fused": float(np.mean(frames)), "temporal": float(rng.uniform()), "frames": frames[0]},
                "frames": frames,
            }
        )
    records.append({"path": "bad.mp4", "label": 1, "status": "refused", "media": "video", "error": "VIDEO: no video"})
    figures = report(records)
    assert figures["threshold"] == 0.4, "the server's threshold"
    assert figures["files"] == 21 and figures["scored"] == 20
    assert figures["refused"] == [{"path": "bad.mp4", "error": "VIDEO: no video"}]
    ok = records[:-1]
    labels = [r["label"] for r in ok]
    assert figures["file_level"]["fused"]["auc"] == summarize(labels, [r["scores"]["fused"] for r in ok]).auc
    assert set(figures["file_level"]) == {"fused", "frames", "temporal"}
    frame_labels = [r["label"] for r in ok for _ in r["frames"]]
    frame_scores = [s for r in ok for s in r["frames"]]
    assert figures["frame_level"]["auc"] == pytest.approx(summarize(frame_labels, frame_scores).auc)
    _, video_labels, means = video_scores([r["path"] for r in ok for _ in r["frames"]], frame_labels, frame_scores)
    assert figures["video_level"]["auc"] == pytest.approx(summarize(video_labels, means).auc)
    assert (
        figures["file_level"]["fused"]["accuracy"]
        == summarize(labels, [r["scores"]["fused"] for r in ok], 0.4).accuracy
    )
    assert headline(figures)["n_real"] == 10 and headline(figures)["threshold"] == 0.4
