"""Malformed, hostile and over-limit media: the payloads of the bad-input catalog.

Every builder returns encoded bytes a client could send. They are small on the
wire, except the ones whose point is size, and each targets one check:
empty input, garbage, truncation, an unknown codec, a header that declares
absurd dimensions or duration (decompression bombs), or text sent as media.
"""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from deepfake_serving.imaging import DEFAULT_MAX_BYTES as IMAGE_MAX_BYTES
from tests import media, media_av

TEXT = b"hello, this is a text file and not a media file at all\n"


def random_bytes(n: int, seed: int = 7) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def truncated(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: int(len(data) * fraction)]


# Images ---------------------------------------------------------------------


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A ~100-byte PNG whose header declares ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def jpeg_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A small JPEG whose frame header (SOF0) is patched to declare ``width`` x ``height``."""
    data = bytearray(media.encode(np.zeros((16, 16, 3), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    # SOF0: marker(2) length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def truncated_jpeg() -> bytes:
    return truncated(media.encode(media.astronaut(), "JPEG"))


def ico_image() -> bytes:
    """A valid image in a format the pipeline does not accept."""
    return media.encode(Image.fromarray(media.astronaut()).resize((64, 64)), "ICO")


def oversized_image() -> bytes:
    """A JPEG padded past the byte limit (a valid JPEG start, then junk)."""
    head = media.encode(np.zeros((16, 16, 3), np.uint8), "JPEG")
    return head + b"\0" * (IMAGE_MAX_BYTES + 1 - len(head))


# Audio ----------------------------------------------------------------------


def wav(data: bytes, *, rate: int = 16000, format_tag: int = 1, declared_data_bytes: int | None = None) -> bytes:
    """A mono 16-bit RIFF/WAVE file around ``data``; the header may declare another data size."""
    declared = len(data) if declared_data_bytes is None else declared_data_bytes
    fmt = format_tag.to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little")
    fmt += (rate * 2).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    header = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + declared.to_bytes(4, "little")
    return b"RIFF" + (len(header) + declared).to_bytes(4, "little") + header + data


def unsupported_codec_wav() -> bytes:
    """A well-formed RIFF/WAVE file whose format tag no decoder knows."""
    return wav(np.zeros(1600, np.int16).tobytes(), format_tag=0x7A7A)


def truncated_flac() -> bytes:
    return truncated(media_av.audio_clip("flac", 3.0), 1 / 3)


def too_long_audio(seconds: float = 125.0) -> bytes:
    """Real audio past the 120 s limit (FLAC of silence: small on the wire)."""
    return media_av.encode_audio(np.zeros(int(16000 * seconds), np.float32), 16000, "flac", "flac")


# Video ----------------------------------------------------------------------


def truncated_mp4() -> bytes:
    return truncated(media_av.encode_video(media_av.gradient_frames(30, 64, 64), 25, "mp4_h264_aac"))


def unsupported_codec_avi() -> bytes:
    """An AVI whose video FourCC no decoder knows."""
    return media_av.encode_video(media_av.gradient_frames(4, 64, 64), 4, "avi_mjpeg").replace(b"MJPG", b"ZZZZ")


def huge_resolution_video() -> bytes:
    """Two 3856x2176 frames: just over the 3840x2160 pixel limit."""
    return media_av.encode_video(media_av.gradient_frames(2, 3856, 2176), 2, "avi_mjpeg")


def hour_long_video(seconds: int = 3600) -> bytes:
    """Three tiny frames spread over ``seconds``: 3 packets, an hour of declared time."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuvj420p"
        stream.time_base = Fraction(1, 1)
        for i, rgb in enumerate(media_av.gradient_frames(3, 64, 64)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i * (seconds // 2), Fraction(1, 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
