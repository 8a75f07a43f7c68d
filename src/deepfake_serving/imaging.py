"""Decoding untrusted image bytes into the RGB arrays the image pipeline uses.

Every failure caused by the bytes themselves becomes a
:class:`~deepfake_serving.errors.RequestError`, so a Python backend can answer
that one request with ``INVALID_ARG`` and serve the rest of its batch.

Decisions worth knowing:

* Formats are restricted to :data:`ACCEPTED_FORMATS` (``Image.open(formats=...)``),
  which also keeps Pillow's rarer, less-audited decoders out of reach.
  MPO (multi-picture JPEG, as many phone cameras write) opens as JPEG.
* The pixel limit is checked on the header's size before any pixel data is
  decoded; Pillow's own ``DecompressionBombWarning`` is turned into an error
  too (it fires inside ``Image.open``, before our check, for very large
  headers). The warning filter is installed with ``warnings.catch_warnings``,
  which is process-global state: fine for a Python backend's single thread.
* Truncated files are errors, never grey-filled: decoding refuses to run if
  something in the process set ``ImageFile.LOAD_TRUNCATED_IMAGES``.
* Transparency is composited onto white (what a viewer shows on a white page);
  dropping alpha would instead expose whatever colour the encoder left under
  transparent pixels, often black or garbage.
* High bit depths are scaled, not clipped: 16-bit greyscale by 255/65535;
  32-bit integer greyscale (mode ``I``) is read as 16-bit data (the range PNG
  and TIFF put there); float greyscale (``F``) is read as 0..1.
* EXIF orientation is applied; unreadable EXIF is ignored rather than fatal,
  because many real photos carry slightly broken metadata.
* Animated images (GIF, APNG, WebP, multi-page TIFF): the first frame.
* Work limits beyond the pixel count, read from the bytes before Pillow
  decodes: a JPEG's scans (a progressive scan costs a pass over every pixel,
  and a 428 KB file can repeat one 3,200 times) and a TIFF's strips or tiles
  (per-chunk decoder setup; 4 M one-row strips took 18 s and 1.4 GB).
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from deepfake_contract import FACE_DETECTOR, IMAGE
from deepfake_serving.errors import RequestError

_ACCEPTED_TEXT = IMAGE.formats
#: Pillow's names of the formats the contract lists ("WebP" -> "WEBP").
ACCEPTED_FORMATS = tuple(name.strip().upper() for name in IMAGE.formats.split(","))
_WHITE = (255, 255, 255)


# The limits and why they are what they are: deepfake_contract.pipelines.
DEFAULT_MAX_BYTES = int(FACE_DETECTOR.limits["max_bytes"])
DEFAULT_MAX_PIXELS = int(FACE_DETECTOR.limits["max_pixels"])
DEFAULT_MAX_JPEG_SCANS = int(FACE_DETECTOR.limits["max_jpeg_scans"])
DEFAULT_MAX_TIFF_CHUNKS = int(FACE_DETECTOR.limits["max_tiff_chunks"])
_SOS = b"\xff\xda"
_TIFF_CHUNK_TAGS = (273, 324)  # StripOffsets, TileOffsets


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    input_name: str = "IMAGE",
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS,
    max_tiff_chunks: int = DEFAULT_MAX_TIFF_CHUNKS,
) -> np.ndarray:
    """Decode ``data`` into a C-contiguous HxWx3 uint8 RGB array.

    Raises :class:`RequestError` for empty, unrecognised, unsupported,
    truncated/corrupt, oversized or over-costly images.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; truncated images would decode as grey")
    if not data:
        raise RequestError(input_name, f"empty; send an encoded image ({_ACCEPTED_TEXT})")
    if len(data) > max_bytes:
        raise RequestError(input_name, f"{len(data)} bytes exceeds the limit of {max_bytes} bytes")
    _check_cost(data, max_jpeg_scans, max_tiff_chunks, input_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = _open(data, max_pixels, input_name)
        try:
            im.load()
            return _to_rgb(_exif_transposed(im), input_name)
        except (RequestError, MemoryError):
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise RequestError(input_name, f"image exceeds the limit of {max_pixels} pixels ({exc})") from exc
        except Exception as exc:  # any decoder failure on bad bytes is the client's
            raise RequestError(input_name, f"{im.format} image is truncated or corrupt ({exc})") from exc
        finally:
            im.close()


def jpeg_scan_count(data: bytes) -> int:
    """Start-of-scan markers in a JPEG. Entropy-coded data escapes every 0xFF
    byte, so each FF DA is a marker; scans of an embedded thumbnail count too
    (an over-estimate by a few, on the safe side)."""
    return data.count(_SOS)


def tiff_chunk_count(data: bytes) -> int | None:
    """Strips or tiles of a TIFF's first image, from its IFD (no values read); None if not a TIFF."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return None
    magic = struct.unpack_from(order + "H", data, 2)[0]
    try:
        if magic == 42:  # classic TIFF: 2-byte entry count, 12-byte entries
            (ifd,) = struct.unpack_from(order + "I", data, 4)
            (entries,) = struct.unpack_from(order + "H", data, ifd)
            layout, first, size = order + "HHI", ifd + 2, 12
        elif magic == 43:  # BigTIFF: 8-byte count, 20-byte entries
            (ifd,) = struct.unpack_from(order + "Q", data, 8)
            (entries,) = struct.unpack_from(order + "Q", data, ifd)
            layout, first, size = order + "HHQ", ifd + 8, 20
        else:
            return None
        counts = [0]
        for k in range(min(entries, 4096)):
            tag, _type, count = struct.unpack_from(layout, data, first + k * size)
            if tag in _TIFF_CHUNK_TAGS:
                counts.append(count)
        return max(counts)
    except struct.error:
        return None  # a broken IFD: Pillow refuses it with its own message


def _check_cost(data: bytes, max_jpeg_scans: int, max_tiff_chunks: int, input_name: str) -> None:
    if data[:2] == b"\xff\xd8":
        scans = jpeg_scan_count(data)
        if scans > max_jpeg_scans:
            raise RequestError(
                input_name,
                f"JPEG has {scans} scans, over the limit of {max_jpeg_scans} (max_jpeg_scans; each scan is a "
                "pass over the whole image); re-encode it as baseline or standard progressive JPEG",
            )
    chunks = tiff_chunk_count(data)
    if chunks is not None and chunks > max_tiff_chunks:
        raise RequestError(
            input_name,
            f"TIFF has {chunks} strips or tiles, over the limit of {max_tiff_chunks} (max_tiff_chunks); "
            "re-save it with larger strips",
        )


def _open(data: bytes, max_pixels: int, input_name: str) -> Image.Image:
    """Read the header only, and refuse images over the pixel limit."""
    try:
        im = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except UnidentifiedImageError as exc:
        raise RequestError(input_name, f"not a recognised image; accepted formats: {_ACCEPTED_TEXT}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RequestError(input_name, f"image exceeds the limit of {max_pixels} pixels ({exc})") from exc
    except Exception as exc:  # malformed headers raise anything from SyntaxError to struct.error
        raise RequestError(input_name, f"corrupt image header ({exc}); accepted formats: {_ACCEPTED_TEXT}") from exc
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise RequestError(
            input_name, f"{width}x{height} pixels ({width * height}) exceeds the limit of {max_pixels} pixels"
        )
    if width == 0 or height == 0:
        im.close()
        raise RequestError(input_name, f"image has no pixels ({width}x{height})")
    return im


def _exif_transposed(im: Image.Image) -> Image.Image:
    """Upright image per EXIF orientation; the image unchanged if EXIF is unreadable."""
    try:
        if im.getexif().get(ExifTags.Base.Orientation, 1) == 1:
            return im  # exif_transpose would return a full copy
        return ImageOps.exif_transpose(im)
    except Exception:  # broken EXIF must not cost the user their request
        return im


def _to_rgb(im: Image.Image, input_name: str) -> np.ndarray:
    """Convert any Pillow mode to 8-bit RGB (see the module docstring for the rules)."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        return _grey_to_rgb(np.asarray(im).astype(np.float64) * (255.0 / 65535.0))
    if mode == "F":
        return _grey_to_rgb(np.nan_to_num(np.asarray(im, dtype=np.float64)) * 255.0)
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa", "RGBX"):
        im = im.convert("RGBA" if mode != "RGBX" else "RGB")
    elif mode not in ("RGB", "RGBA"):
        try:
            im = im.convert("RGB")
        except ValueError as exc:
            raise RequestError(input_name, f"unsupported colour mode {mode}") from exc
    if im.mode == "RGBA":
        background = Image.new("RGB", im.size, _WHITE)
        background.paste(im, mask=im.getchannel("A"))
        im = background
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _grey_to_rgb(values: np.ndarray) -> np.ndarray:
    """Round greyscale values scaled to 0..255 into uint8 and replicate into three channels."""
    grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
