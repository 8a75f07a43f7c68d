"""decode_image: formats, colour modes, orientation, and refusal of bad bytes."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from deepfake_serving.errors import RequestError
from deepfake_serving.imaging import decode_image


def _rgb_pattern(width: int = 64, height: int = 48) -> np.ndarray:
    """Blocky colours that survive lossy codecs well enough to compare."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x // 16) * 60, (y // 16) * 80, ((x + y) // 16) * 30], axis=2).astype(np.uint8)


def _encode(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    return buf.getvalue()


def _raw_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` but whose pixel data is tiny."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF"])
def test_lossless_formats_decode_to_the_exact_rgb_pixels(fmt: str) -> None:
    rgb = _rgb_pattern()
    out = decode_image(_encode(Image.fromarray(rgb), fmt))
    assert out.dtype == np.uint8 and out.shape == rgb.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_lossless_webp_decodes_to_the_exact_rgb_pixels() -> None:
    rgb = _rgb_pattern()
    np.testing.assert_array_equal(decode_image(_encode(Image.fromarray(rgb), "WEBP", lossless=True)), rgb)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_decode_close_to_the_original(fmt: str) -> None:
    rgb = _rgb_pattern()
    out = decode_image(_encode(Image.fromarray(rgb), fmt, quality=95))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 4


def test_gif_palette_decodes_to_its_colours() -> None:
    rgb = _rgb_pattern()
    out = decode_image(_encode(Image.fromarray(rgb), "GIF"))
    assert out.shape == rgb.shape
    np.testing.assert_array_equal(out, rgb)  # fewer than 256 colours: the palette is exact


def test_animated_gif_yields_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = decode_image(data)
    assert out.shape == (10, 20, 3)
    assert (out == (255, 0, 0)).all()


def test_exif_orientation_is_applied() -> None:
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:5, :5] = (255, 0, 0)  # stored top-left corner
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = decode_image(_encode(im, "JPEG", quality=95, exif=exif.tobytes()))
    assert out.shape == (40, 20, 3)
    assert out[:5, -5:, 0].mean() > 200  # now at the top right
    assert out[:5, :5, 0].mean() < 50


def test_greyscale_becomes_three_equal_channels() -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = decode_image(_encode(Image.fromarray(grey, "L"), "PNG"))
    assert out.shape == (16, 16, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    im = Image.fromarray(values)
    assert im.mode == "I;16"
    out = decode_image(_encode(im, "PNG"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 4, 128, 255])


def test_thirty_two_bit_integer_greyscale_is_read_as_sixteen_bit() -> None:
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.int32)
    out = decode_image(_encode(Image.fromarray(values, "I"), "TIFF"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 4, 128, 255])


def test_float_greyscale_is_read_as_zero_to_one() -> None:
    values = np.array([[0.0, 0.5, 1.0, 2.0]], dtype=np.float32)
    out = decode_image(_encode(Image.fromarray(values, "F"), "TIFF"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255, 255])


def test_transparent_pixels_are_composited_on_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    out = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out[:2] == (200, 0, 0)).all()
    assert (out[2:] == 255).all()


def test_greyscale_with_alpha_is_composited_on_white() -> None:
    la = Image.merge("LA", (Image.new("L", (4, 4), 10), Image.new("L", (4, 4), 0)))
    assert (decode_image(_encode(la, "PNG")) == 255).all()


def test_palette_with_transparency_is_composited_on_white() -> None:
    im = Image.new("P", (4, 4), 1)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 0)
    out = decode_image(_encode(im, "PNG", transparency=0))
    assert (out[0, 0] == 255).all()
    assert (out[1, 1] == (255, 0, 0)).all()


@pytest.mark.parametrize("fmt", ["JPEG", "TIFF"])
def test_cmyk_is_converted_to_rgb(fmt: str) -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red ink
    out = decode_image(_encode(cmyk, fmt))
    assert out.shape == (8, 8, 3)
    assert out[..., 0].mean() > 200 and out[..., 1:].mean() < 40


def test_bilevel_image_becomes_black_and_white_rgb() -> None:
    im = Image.new("1", (8, 8), 0)
    im.putpixel((0, 0), 1)
    out = decode_image(_encode(im, "PNG"))
    assert (out[0, 0] == 255).all() and (out[1:, 1:] == 0).all()


def test_empty_bytes_are_refused_with_the_input_name() -> None:
    with pytest.raises(RequestError, match=r"^PHOTO: empty") as info:
        decode_image(b"", input_name="PHOTO")
    assert info.value.input_name == "PHOTO"


def test_non_image_bytes_are_refused_listing_the_accepted_formats() -> None:
    with pytest.raises(RequestError, match="accepted formats: JPEG, PNG, WebP, BMP, GIF, TIFF"):
        decode_image(b"%PDF-1.7 this is not an image" * 10)


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "TGA"])
def test_formats_pillow_knows_but_we_do_not_accept_are_refused(fmt: str) -> None:
    data = _encode(Image.fromarray(_rgb_pattern()), fmt)
    with pytest.raises(RequestError, match="accepted formats"):
        decode_image(data)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_raise_instead_of_decoding_grey(fmt: str) -> None:
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)  # large, incompressible body
    data = _encode(Image.fromarray(noisy), fmt)
    with pytest.raises(RequestError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


def test_a_truncated_header_is_refused() -> None:
    data = _encode(Image.fromarray(_rgb_pattern()), "PNG")
    with pytest.raises(RequestError):
        decode_image(data[:20])


def test_too_many_pixels_is_refused_from_the_header_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_load(self):  # proves the refusal happens before any pixel is decoded
        raise AssertionError("load() must not be reached")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_load)
    data = _encode(Image.fromarray(_rgb_pattern(100, 60)), "PNG")
    with pytest.raises(RequestError, match=r"100x60 pixels \(6000\) exceeds the limit of 5000 pixels"):
        decode_image(data, max_pixels=5000)


def test_a_decompression_bomb_header_is_refused() -> None:
    with pytest.raises(RequestError, match="exceeds the limit of 40000000 pixels"):
        decode_image(_raw_png(30_000, 30_000))  # 900 Mpx claimed by a ~100-byte file
    with pytest.raises(RequestError, match="7000x7000 pixels"):
        decode_image(_raw_png(7_000, 7_000))  # under Pillow's own limit, over ours


def test_pillows_decompression_bomb_warning_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px warns (but is under 2x)
    data = _encode(Image.fromarray(_rgb_pattern(40, 40)), "PNG")
    with pytest.raises(RequestError, match="exceeds the limit"):
        decode_image(data, max_pixels=10**9)


def test_decoding_refuses_to_run_when_truncated_images_are_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        decode_image(_encode(Image.fromarray(_rgb_pattern()), "PNG"))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_corrupted_bytes_only_ever_raise_request_errors(fmt: str) -> None:
    data = _encode(Image.fromarray(_rgb_pattern()), fmt)
    rng = np.random.default_rng(1)
    for _ in range(60):
        mutated = np.frombuffer(data, dtype=np.uint8).copy()
        positions = rng.integers(0, len(data), size=int(rng.integers(1, 8)))
        mutated[positions] = rng.integers(0, 256, size=positions.size, dtype=np.uint8)
        cut = int(rng.integers(1, len(data) + 1))
        try:
            out = decode_image(mutated[:cut].tobytes())
        except RequestError:
            continue
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def test_files_over_the_byte_limit_are_refused_before_decoding():
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    data = buffer.getvalue()
    with pytest.raises(RequestError, match=rf"^IMAGE: {len(data)} bytes exceeds the limit of 1000 bytes$"):
        decode_image(data, max_bytes=1000)
    assert decode_image(data, max_bytes=len(data)).shape == (64, 64, 3)
