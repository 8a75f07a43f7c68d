"""Tell image, audio and video apart from the first bytes of a file.

``detect`` must route a file to the right ensemble without trusting its name:
uploads are often renamed, stdin has no name, and a ``.webm``/``.mp4``/``.ogg``
can hold sound only. Only the container headers are read; the server does the
real decoding and has the last word on validity.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
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
    """The media kind and format of ``data``, or None when it is not recognised.

    The first rule of :data:`_RULES` whose signature matches decides; its
    answer may still be None (a RIFF file of an unknown form).
    """
    head = bytes(data[:64])
    for matches, identify in _RULES:
        if matches(head):
            return identify(head, data)
    return None


def _starts_with(*prefixes: bytes) -> Callable[[bytes], bool]:
    """A rule signature: the file starts with one of ``prefixes``."""
    return lambda head: head.startswith(prefixes)


def _is(kind: MediaKind, fmt: str) -> Callable[[bytes, bytes], Sniffed]:
    """A rule answer for formats the signature alone identifies."""
    found = Sniffed(kind, fmt)
    return lambda head, data: found


def _is_bmp(head: bytes) -> bool:
    """``BM`` alone is too common; a known DIB header size after the file header makes it a bitmap."""
    return head[:2] == b"BM" and len(head) >= 18 and struct.unpack_from("<I", head, 14)[0] in _BMP_DIB_SIZES


def _is_riff(head: bytes) -> bool:
    """A RIFF header long enough to hold its form type."""
    return head[:4] == b"RIFF" and len(head) >= 12


def _riff_form(head: bytes, data: bytes) -> Sniffed | None:
    """RIFF holds WebP images, WAV sound or AVI video, told apart by the form type; others are not media we take."""
    return _RIFF_FORMS.get(head[8:12])


def _is_aiff(head: bytes) -> bool:
    """An IFF ``FORM`` of type AIFF or AIFC (other IFF forms are not audio)."""
    return head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC")


def _is_iso_bmff(head: bytes) -> bool:
    """MP4/MOV/3GP/HEIF: an ``ftyp`` box first."""
    return len(head) >= 12 and head[4:8] == b"ftyp"


def _is_old_quicktime(head: bytes) -> bool:
    """QuickTime files from before ``ftyp`` start with one of its top-level atoms."""
    return len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """Raw MP3/AAC (ADTS) start with an 11-bit frame sync."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def _mpeg_audio(head: bytes, data: bytes) -> Sniffed:
    """The frame header's layer field: 0 is ADTS (AAC), the others MPEG audio layers (MP3)."""
    layer = (head[1] >> 1) & 0x3
    return Sniffed("audio", "aac" if layer == 0 else "mp3")


_RIFF_FORMS = {
    b"WEBP": Sniffed("image", "webp"),
    b"WAVE": Sniffed("audio", "wav"),
    b"AVI ": Sniffed("video", "avi"),
}

#: (signature, answer) in the order they are tried: the first matching signature decides.
_RULES: tuple[tuple[Callable[[bytes], bool], Callable[[bytes, bytes], Sniffed | None]], ...] = (
    (_starts_with(b"\xff\xd8\xff"), _is("image", "jpeg")),
    (_starts_with(b"\x89PNG\r\n\x1a\n"), _is("image", "png")),
    (_starts_with(b"GIF87a", b"GIF89a"), _is("image", "gif")),
    (_starts_with(b"II*\x00", b"MM\x00*"), _is("image", "tiff")),
    (_is_bmp, _is("image", "bmp")),
    (_is_riff, _riff_form),
    (_is_aiff, _is("audio", "aiff")),
    (_starts_with(b"fLaC"), _is("audio", "flac")),
    (_starts_with(b"OggS"), lambda head, data: _sniff_ogg(data)),
    (_starts_with(b"\x1a\x45\xdf\xa3"), lambda head, data: _sniff_ebml(data)),
    (_is_iso_bmff, lambda head, data: _sniff_iso_bmff(data)),
    (_is_old_quicktime, _is("video", "mov")),
    (_starts_with(b"ID3"), _is("audio", "mp3")),
    (_is_mpeg_audio_frame, _mpeg_audio),
)


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
