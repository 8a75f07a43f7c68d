"""Content sniffing: the ensemble is chosen from magic bytes, not names (no server needed)."""

from __future__ import annotations

import struct

import pytest

from deepfake_client import sniff
from deepfake_serving.testing.media import astronaut, encode


def ogg_page(packet: bytes, *, bos: bool = True) -> bytes:
    """One Ogg page holding ``packet`` (a single lacing segment, so packets under 255 bytes)."""
    return b"OggS" + bytes([0, 0x02 if bos else 0]) + b"\x00" * 20 + bytes([1, len(packet)]) + packet


def ftyp(brand: bytes, *handlers: bytes) -> bytes:
    """An ISO BMFF ``ftyp`` box with ``brand``, then a ``moov`` holding one ``hdlr`` box per handler type."""
    boxes = b"".join(struct.pack(">I", 32) + b"hdlr" + b"\x00" * 8 + handler + b"\x00" * 12 for handler in handlers)
    return struct.pack(">I", 16) + b"ftyp" + brand + b"\x00\x00\x02\x00" + b"moov" + boxes


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_every_image_format_the_server_accepts_is_sniffed_as_an_image(fmt: str) -> None:
    """Real encoder output of every accepted image format routes to detect_image."""
    found = sniff(encode(astronaut()[:64, :64], fmt))
    assert found is not None and found.kind == "image" and found.format == fmt.lower()


@pytest.mark.parametrize(
    ("data", "kind", "fmt"),
    [
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "audio", "wav"),
        (b"fLaC\x00\x00\x00\x22", "audio", "flac"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio", "mp3"),
        (b"\xff\xfb\x90\x64" + b"\x00" * 8, "audio", "mp3"),
        (ogg_page(b"\x01vorbis" + b"\x00" * 22), "audio", "ogg"),
        (ogg_page(b"OpusHead" + b"\x01" * 11), "audio", "opus"),
        (ogg_page(b"\x80theora" + b"\x00" * 34) + ogg_page(b"\x01vorbis" + b"\x00" * 22), "video", "ogg"),
        (ftyp(b"M4A "), "audio", "m4a"),
        (ftyp(b"isom", b"soun"), "audio", "mp4"),
        (ftyp(b"isom", b"vide", b"soun"), "video", "mp4"),
        (ftyp(b"qt  ", b"vide"), "video", "mov"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm" + b"\x16\x54\xae\x6b\xae\x83\x81\x01", "video", "webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm" + b"\x16\x54\xae\x6b\xae\x83\x81\x02", "audio", "webm"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "avi"),
    ],
)
def test_audio_and_video_containers_are_told_apart_by_their_track_headers(data: bytes, kind: str, fmt: str) -> None:
    """Audio formats go by their magic; containers that may hold sound only go by their track headers."""
    found = sniff(data)
    assert found is not None and (found.kind, found.format) == (kind, fmt)


@pytest.mark.parametrize("data", [b"", b"hello world", b"%PDF-1.7\n", b"PK\x03\x04zip", b"RIFF\x00\x00\x00\x00XXXX"])
def test_content_that_is_no_media_is_not_recognised(data: bytes) -> None:
    """Non-media (text, PDF, ZIP, an unknown RIFF form) is not guessed at."""
    assert sniff(data) is None
