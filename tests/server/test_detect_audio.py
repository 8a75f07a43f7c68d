"""detect_audio end to end: encoded audio in, per-window and aggregate scores out, on the real server."""

from __future__ import annotations

import librosa  # the reference implementation, as test oracle
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from deepfake_contract import DETECT_AUDIO
from deepfake_serving import audio as A
from deepfake_serving.audio_pipeline import prepare_audio
from deepfake_serving.fusion import AudioAggregation
from deepfake_serving.onnx_runner import OnnxRunner, SessionSettings
from deepfake_serving.testing import media_av
from deepfake_serving.testing.triton import MODEL_REPOSITORY

pytestmark = pytest.mark.server

OUTPUTS = list(DETECT_AUDIO.output_names)


def detect(client: grpcclient.InferenceServerClient, data: bytes) -> dict[str, np.ndarray]:
    tensor = grpcclient.InferInput("AUDIO", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    result = client.infer("detect_audio", [tensor], outputs=[grpcclient.InferRequestedOutput(n) for n in OUTPUTS])
    return {name: result.as_numpy(name) for name in OUTPUTS}


def assert_well_formed(out: dict[str, np.ndarray], windows: int) -> None:
    for name in ("WINDOW_FAKE_PROB", "WINDOW_START_S", "WINDOW_SILENT"):
        assert out[name].shape == (windows,), name
    for name in ("FAKE_PROB", "DURATION_S", "AUDIO_SILENT", "DEMO_WEIGHTS"):
        assert out[name].shape == (1,), name
    assert np.all((out["WINDOW_FAKE_PROB"] >= 0) & (out["WINDOW_FAKE_PROB"] <= 1))
    assert 0 <= out["FAKE_PROB"][0] <= 1
    assert out["DEMO_WEIGHTS"].tolist() == [True]


@pytest.mark.parametrize("name", list(media_av.AUDIO_FORMATS))
def test_every_audio_format_is_scored_per_window(grpc_client, name):
    out = detect(grpc_client, media_av.audio_clip(name, 3.0))
    assert_well_formed(out, 1)
    assert out["DURATION_S"][0] == pytest.approx(3.0, abs=0.1)  # codec priming/padding
    assert out["WINDOW_SILENT"].tolist() == [False] and out["AUDIO_SILENT"].tolist() == [False]
    assert out["FAKE_PROB"][0] == pytest.approx(out["WINDOW_FAKE_PROB"][0], abs=1e-6)


def test_long_audio_gets_sliding_windows_with_their_starts(grpc_client):
    out = detect(grpc_client, media_av.audio_clip("flac", 9.0))
    # 4 s windows every 2 s, the last aligned to the end: 0, 2, 4, 5.
    assert_well_formed(out, 4)
    np.testing.assert_allclose(out["WINDOW_START_S"], [0.0, 2.0, 4.0, 5.0], atol=1e-4)
    assert out["DURATION_S"][0] == pytest.approx(9.0, abs=1e-3)
    top = np.sort(out["WINDOW_FAKE_PROB"])[-1:]  # ceil(0.25 * 4) = 1 window
    assert out["FAKE_PROB"][0] == pytest.approx(top.mean(), abs=1e-6)


def test_short_audio_is_padded_and_its_real_length_reported(grpc_client):
    out = detect(grpc_client, media_av.audio_clip("wav", 1.5))
    assert_well_formed(out, 1)
    assert out["WINDOW_START_S"].tolist() == [0.0]
    assert out["DURATION_S"][0] == pytest.approx(1.5, abs=1e-3)


def test_served_mels_match_the_librosa_reference_on_the_same_samples(grpc_client):
    """audio_preprocess (called directly) against the reference librosa log-mel, per window, <= 1e-3 dB."""
    data = media_av.audio_clip("mp3", 6.0)
    tensor = grpcclient.InferInput("AUDIO", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=object))
    served = grpc_client.infer("audio_preprocess", [tensor]).as_numpy("AUDIO_INPUT")
    windows, _, _ = A.window_audio(A.decode_audio(data))
    assert served.shape == (len(windows), 1, 80, 251) == (2, 1, 80, 251)
    for got, window in zip(served, windows, strict=True):
        ref = librosa.power_to_db(
            librosa.feature.melspectrogram(y=window, sr=16000, n_fft=1024, hop_length=256, n_mels=80), ref=np.max
        )
        assert np.abs(got[0] - ref).max() <= 1e-3


@pytest.mark.parametrize("subset", [["FAKE_PROB"], ["WINDOW_START_S", "DEMO_WEIGHTS"], ["AUDIO_SILENT", "DURATION_S"]])
def test_any_subset_of_outputs_can_be_requested(grpc_client, subset):
    tensor = grpcclient.InferInput("AUDIO", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([media_av.audio_clip("opus", 2.0)], dtype=object))
    result = grpc_client.infer("detect_audio", [tensor], outputs=[grpcclient.InferRequestedOutput(n) for n in subset])
    full = detect(grpc_client, media_av.audio_clip("opus", 2.0))
    assert {o.name for o in result.get_response().outputs} == set(subset)  # what was asked, nothing else
    for name in subset:
        np.testing.assert_array_equal(result.as_numpy(name), full[name], err_msg=name)


def test_window_scores_equal_onnx_runtime_on_the_same_mels(grpc_client):
    data = media_av.audio_clip("wav", 7.0)
    out = detect(grpc_client, data)
    windows = prepare_audio(data)
    runner = OnnxRunner(MODEL_REPOSITORY / "audio_detector" / "1" / "model.onnx", SessionSettings(2))
    expected = runner.run_batch([{"input": windows.inputs}], ["output"])[0]["output"][:, 1]
    np.testing.assert_allclose(out["WINDOW_FAKE_PROB"], expected, atol=1e-5)
    np.testing.assert_allclose(out["WINDOW_START_S"], windows.starts_s)
    score, _ = AudioAggregation().score(expected, windows.silent)
    assert out["FAKE_PROB"][0] == pytest.approx(score, abs=1e-5)


def test_silence_is_flagged_and_scored_without_nan(grpc_client):
    data = media_av.encode_audio(np.zeros(16000 * 6, np.float32), 16000, "wav", "pcm_s16le")
    out = detect(grpc_client, data)
    assert_well_formed(out, 2)
    assert out["AUDIO_SILENT"].tolist() == [True] and out["WINDOW_SILENT"].tolist() == [True, True]
    assert out["FAKE_PROB"].tolist() == [0.5]
    assert np.isfinite(out["WINDOW_FAKE_PROB"]).all()


def test_silent_windows_do_not_count_towards_the_score(grpc_client):
    sr = 16000
    signal = np.concatenate([media_av.speechlike(sr, 4.0), np.zeros(sr * 6, np.float32)])
    out = detect(grpc_client, media_av.encode_audio(signal, sr, "wav", "pcm_s16le"))
    silent = out["WINDOW_SILENT"]
    assert silent.tolist() == [False, False, True, True]  # starts 0, 2, 4, 6
    assert out["AUDIO_SILENT"].tolist() == [False]
    voiced = out["WINDOW_FAKE_PROB"][~silent]
    assert out["FAKE_PROB"][0] == pytest.approx(voiced.max(), abs=1e-6)  # ceil(0.25 * 2) = 1
