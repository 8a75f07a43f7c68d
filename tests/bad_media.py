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
import cv2
import numpy as np
from PIL import Image

from deepfake_serving.imaging import DEFAULT_MAX_BYTES as IMAGE_MAX_BYTES
from deepfake_serving.testing import media, media_av

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


def repeated_scan_jpeg(width: int = 6000, height: int = 6600, repeats: int = 3200) -> bytes:
    """A flat progressive JPEG whose last scan (an AC refinement) is repeated ``repeats`` times:
    a few hundred KB whose decoding costs ``repeats`` passes over every pixel."""
    data = media.encode(Image.new("L", (width, height), 128), "JPEG", progressive=True, quality=90)
    last_scan = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * repeats + data[end:]


def many_strip_tiff(width: int = 10, height: int = 100_000) -> bytes:
    """A greyscale TIFF with one strip per row, every strip pointing at the same bytes."""
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value or offset
        (256, 3, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, height, 0), (277, 3, 1, 1), (278, 4, 1, 1), (279, 4, height, 0),
    ]  # fmt: skip
    ifd_size = 2 + 12 * len(entries) + 4
    offsets_at = 8 + ifd_size
    counts_at = offsets_at + 4 * height
    pixels_at = counts_at + 4 * height
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = {273: offsets_at, 279: counts_at}.get(tag, value)
        packed = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    body = struct.pack("<I", pixels_at) * height + struct.pack("<I", width) * height + bytes(width)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + body


def tiled_faces_jpeg(face: np.ndarray, side: int = 4000, tile: int = 48) -> bytes:
    """``side`` x ``side`` pixels of ``tile``-pixel copies of one face: thousands of MTCNN candidates."""
    small = cv2.resize(face, (tile, tile), interpolation=cv2.INTER_AREA)
    reps = side // tile + 1
    return media.encode(Image.fromarray(np.tile(small, (reps, reps, 1))[:side, :side]), "JPEG", quality=90)


def rate_changing_mp3(rates: tuple[int, ...] = (44100, 48000, 32000), repeats: int = 5) -> bytes:
    """MP3 segments at alternating sample rates, concatenated (each frame header carries its rate)."""
    segments = []
    for rate in rates:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp3", options={"write_xing": "0", "id3v2_version": "0"}) as out:
            stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
            media_av.mux_audio(out, stream, media_av.tone(rate, 0.2)[None], rate)
        segments.append(buffer.getvalue())
    return b"".join(segments * repeats)


def one_keyframe_4k_video(frames: int = 1300) -> bytes:
    """4K H.264 at 300 fps with a single keyframe: every frame must be decoded to reach the last."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        options = {"preset": "ultrafast", "g": "100000", "keyint_min": "100000", "sc_threshold": "0", "bframes": "0"}
        stream = out.add_stream("libx264", rate=300, options=options)
        stream.width, stream.height, stream.pix_fmt = 3840, 2160, "yuv420p"
        picture = av.VideoFrame.from_ndarray(np.full((2160, 3840, 3), 90, np.uint8), format="rgb24")
        picture = picture.reformat(format="yuv420p")  # converted once: the encoder gets the same frame each time
        for index in range(frames):
            picture.pts = index
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()
