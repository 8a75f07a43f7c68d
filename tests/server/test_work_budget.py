"""Well-formed files inside every size limit whose decoding or detection would
cost minutes or gigabytes: each is refused naming the limit it exceeds, or
answered, within the per-request work budget (RELIABILITY.md, "Work budget").

Every file is built here; the server must stay ready and answer a good request
exactly as it did before.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from PIL import Image
from tritonclient.utils import InferenceServerException

from deepfake_serving.testing import media, media_av
from deepfake_serving.testing.triton import running_triton
from tests import bad_media
from tests.server.helpers import infer

pytestmark = pytest.mark.server

#: A refusal from the headers happens before the expensive step: well under a second of work.
REFUSED_WITHIN_S = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_triton(tmp_path_factory.mktemp("budget")) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    client = grpcclient.InferenceServerClient(server.grpc_url)
    yield client
    client.close()


def _bytes(name: str, data: bytes):
    return [(name, np.array([data], dtype=object), "BYTES")]


@pytest.fixture(scope="module")
def good_answer(client):
    return infer(client, "detect_image", _bytes("IMAGE", media.encode(media.astronaut()))).as_numpy("FAKE_PROB")


REFUSED = {
    "jpeg_with_3200_scans": ("detect_image", "IMAGE", lambda: bad_media.repeated_scan_jpeg(), "max_jpeg_scans"),
    "tiff_with_100000_strips": ("detect_image", "IMAGE", lambda: bad_media.many_strip_tiff(), "max_tiff_chunks"),
    "16_mp_of_tiled_faces": (
        "detect_image",
        "IMAGE",
        lambda: bad_media.tiled_faces_jpeg(media.astronaut()[20:200, 140:320]),
        "max_candidates",
    ),
    "mp3_changing_rate_14_times": ("detect_audio", "AUDIO", lambda: bad_media.rate_changing_mp3(), "max_rate_changes"),
    "4k_video_with_one_keyframe": (
        "detect_video",
        "VIDEO",
        lambda: bad_media.one_keyframe_4k_video(),
        "max_decode_pixels",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_costly_input_is_refused_naming_the_limit(client, good_answer, case):
    model, name, make, limit = REFUSED[case]
    data = make()
    started = time.monotonic()
    with pytest.raises(InferenceServerException) as caught:
        infer(client, model, _bytes(name, data), timeout_s=60)
    elapsed = time.monotonic() - started
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT", caught.value
    assert limit in caught.value.message() and name in caught.value.message()
    assert elapsed < REFUSED_WITHIN_S, f"{case} took {elapsed:.1f} s to refuse"


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((300, 300, 3), np.uint8),
        np.full((300, 300, 3), 255, np.uint8),
        np.full((300, 300, 3), 128, np.uint8),
    ],
    ids=["black", "white", "grey"],
)
def test_a_flat_image_is_scored(client, image):
    """The spectral features divided by the spectrum's total: a black image was INTERNAL (ZeroDivisionError)."""
    result = infer(client, "detect_image", _bytes("IMAGE", media.encode(image, "PNG")))
    features = result.as_numpy("FORENSIC_FEATURES")
    assert np.isfinite(features).all() and features[0, 0] == 0.0  # no high frequencies at all
    assert 0.0 <= float(result.as_numpy("FAKE_PROB")[0]) <= 1.0


def test_an_animated_gif_whose_first_frame_is_black_is_scored(client):
    frames = [Image.new("RGB", (200, 200), (0, 0, 0)), Image.fromarray(media.astronaut()).resize((200, 200))]
    data = media.encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    result = infer(client, "detect_image", _bytes("IMAGE", data))
    assert np.isfinite(result.as_numpy("FORENSIC_FEATURES")).all()


def test_a_clip_with_fewer_frames_than_sampled_says_so(client):
    frames = media_av.moving_frames(media.astronaut(), 5, 320, 240)
    data = media_av.encode_frames(frames, 10, "mp4", "libx264", "yuv420p", {"preset": "ultrafast"})
    result = infer(client, "detect_video", _bytes("VIDEO", data))
    assert int(result.as_numpy("DISTINCT_FRAMES")[0]) == 5
    assert len(result.as_numpy("FRAME_FAKE_PROB")) == 16  # always 16 frames, the last repeated


def test_the_server_still_answers_the_same_after_the_costly_inputs(server, client, good_answer):
    assert server.process.poll() is None and server.is_ready()
    again = infer(client, "detect_image", _bytes("IMAGE", media.encode(media.astronaut()))).as_numpy("FAKE_PROB")
    np.testing.assert_array_equal(again, good_answer)
