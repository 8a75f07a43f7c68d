"""What one request may send: sizes, formats and the media each entry model takes.

The server enforces these (they are the shipped values of its ``config.pbtxt``
parameters, which a test compares with this module); the client refuses a file
over them before sending anything, with the same numbers in its message.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True)
class Media:
    """One kind of media and the entry model that judges it.

    Attributes:
        kind: ``image``, ``audio`` or ``video``.
        model: the entry model's name.
        input: its one input tensor (the encoded file's bytes).
        max_bytes: the largest encoded file it accepts.
        formats: what the server decodes, as its error messages list them.
    """

    kind: str
    model: str
    input: str
    max_bytes: int
    formats: str


IMAGE = Media("image", "detect_image", "IMAGE", 32 * MiB, "JPEG, PNG, WebP, BMP, GIF, TIFF")
AUDIO = Media("audio", "detect_audio", "AUDIO", 64 * MiB, "WAV, FLAC, MP3, OGG/Vorbis or Opus")
VIDEO = Media("video", "detect_video", "VIDEO", 256 * MiB, "MP4/MOV (H.264/AAC), WebM (VP9/Opus) or AVI (MJPEG)")
MEDIA: tuple[Media, ...] = (IMAGE, AUDIO, VIDEO)

#: The largest body an inference request needs: the largest file plus room for
#: the request's JSON header and the 4-byte length prefix of a BYTES tensor.
MAX_REQUEST_BYTES = max(m.max_bytes for m in MEDIA) + 1 * MiB

#: Image pixels decoded for one image (40 MP: a 48 MP phone photo is refused,
#: a 12 MP one is not) and for one video frame (3840x2160).
MAX_IMAGE_PIXELS = 40_000_000
MAX_FRAME_PIXELS = 3840 * 2160

#: Faces scored per image (more are counted in FACES_DROPPED) and per video frame.
MAX_FACES = 16
MAX_FACES_PER_FRAME = 4

#: Longest audio (s) detect_audio windows, and longest video (s) detect_video reads.
MAX_AUDIO_S = 120
MAX_VIDEO_S = 600

#: Frames detect_video samples across a video, and the temporal analyzer's clip length.
VIDEO_FRAMES = 16
