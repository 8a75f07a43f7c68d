"""Tell image, audio and video apart from the first bytes of a file.

``detect`` must route a file to the right ensemble without trusting its name:
uploads are often renamed, stdin has no name, and a ``.webm``/``.mp4``/``.ogg``
can hold sound only. Only the container headers are read; the server does the
real decoding and has the last word on validity.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

__all__ = ["MediaKind", "Sniffed", "sniff", "SNIFF_BYTES"]

MediaKind = Literal["image", "audio", "video"]

#: How much of the start of a file ``sniff`` looks at (track headers of
#: MP4/Matroska/Ogg normally sit well inside this).
SNIFF_BYTES = 1 << 20

_AUDIO_ONLY_FTYP = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_IMAGE_FTYP = {b"heic", b"heix", b"heif", b"mif1", b"msf1", b"avif", b"avis"}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


@dataclass(frozen=True)
class Sniffed:
    """The kind of media (which ensemble) and the container format found."""

    kind: MediaKind
    format: str


def sniff(data: bytes) -> Sniffed | None:
    """The media kind and format of ``data``, or None when it is not recognised."""
    head = bytes(data[:64])
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "gif")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Sniffed("image", "tiff")
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_SIZES:
        return Sniffed("image", "bmp")
    if head[:4] == b"RIFF" and len(head) >= 12:
        form = head[8:12]
        if form == b"WEBP":
            return Sniffed("image", "webp")
        if form == b"WAVE":
            return Sniffed("audio", "wav")
        if form == b"AVI ":
            return Sniffed("video", "avi")
        return None
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return Sniffed("audio", "aiff")
    if head.startswith(b"fLaC"):
        return Sniffed("audio", "flac")
    if head.startswith(b"OggS"):
        return _sniff_ogg(data)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _sniff_ebml(data)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _sniff_iso_bmff(data)
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return Sniffed("video", "mov")
    if head.startswith(b"ID3"):
        return Sniffed("audio", "mp3")
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0x3
        return Sniffed("audio", "aac" if layer == 0 else "mp3")
    return None


def _sniff_ogg(data: bytes) -> Sniffed:
    """Ogg carries Vorbis/Opus/FLAC (audio) or Theora (video): read the first packet of each stream."""
    codecs: list[str] = []
    offset = 0
    while offset + 27 <= len(data) and data[offset : offset + 4] == b"OggS":
        header_type = data[offset + 5]
        segments = data[offset + 26]
        table = data[offset + 27 : offset + 27 + segments]
        body = offset + 27 + segments
        if not header_type & 0x02:  # past the beginning-of-stream pages
            break
        packet = bytes(data[body : body + 8])
        if packet.startswith(b"\x80theora"):
            codecs.append("theora")
        elif packet.startswith(b"\x01vorbis"):
            codecs.append("vorbis")
        elif packet.startswith(b"OpusHead"):
            codecs.append("opus")
        elif packet.startswith(b"\x7fFLAC"):
            codecs.append("flac")
        else:
            codecs.append("other")
        offset = body + sum(table)
    if "theora" in codecs:
        return Sniffed("video", "ogg")
    if "opus" in codecs and "vorbis" not in codecs:
        return Sniffed("audio", "opus")
    return Sniffed("audio", "ogg")


def _sniff_ebml(data: bytes) -> Sniffed:
    """WebM/Matroska: a video track makes it video, audio tracks alone make it audio."""
    head = bytes(data[:64])
    fmt = "webm" if b"webm" in head else "matroska"
    cluster = data.find(b"\x1f\x43\xb6\x75")
    tracks = bytes(data[: cluster if cluster > 0 else SNIFF_BYTES])
    # TrackType element: ID 0x83, size 1, value 1 (video) or 2 (audio).
    if b"\x83\x81\x01" in tracks:
        return Sniffed("video", fmt)
    if b"\x83\x81\x02" in tracks:
        return Sniffed("audio", fmt)
    return Sniffed("video", fmt)


def _sniff_iso_bmff(data: bytes) -> Sniffed:
    """MP4/MOV/3GP: the handler boxes say whether there is a picture track; the brand is the fallback."""
    brand = bytes(data[8:12])
    if brand in _IMAGE_FTYP:
        return Sniffed("image", brand.decode("ascii").strip())
    fmt = "mov" if brand == b"qt  " else "3gp" if brand.startswith(b"3g") else "mp4"
    handlers = set()
    start = 0
    while (index := data.find(b"hdlr", start)) >= 0 and index + 16 <= len(data):
        handlers.add(bytes(data[index + 12 : index + 16]))
        start = index + 4
    if b"vide" in handlers:
        return Sniffed("video", fmt)
    if b"soun" in handlers or brand in _AUDIO_ONLY_FTYP:
        return Sniffed("audio", "m4a" if brand in _AUDIO_ONLY_FTYP else fmt)
    return Sniffed("video", fmt)
