"""A small real-vs-manipulated face dataset made from one real photo, for trying (and testing) the visual paths.

Real: scikit-image's astronaut photo (:func:`deepfake_serving.testing.media.astronaut`,
a real photograph with one face), varied per sample (crop window, hence scale,
position and background; mirror; brightness and contrast; JPEG quality) so that
no two samples are the same picture. Fake: each real sample again, with the face
region replaced by a blurred, colour-shifted, recompressed copy of itself,
blended in through an elliptical mask with a visible seam: the traces a face
swap leaves (a smoother face than its surroundings, a colour mismatch, a
blending boundary, double compression). Videos: a varied close-up astronaut
frame in the slight motion of :func:`deepfake_serving.testing.media_av.moving_frames`;
the fake is the same clip with a (more strongly) manipulated face on every other
frame, a temporal inconsistency (flicker) that a frame-by-frame face swap produces.

Every fake is the manipulated twin of a real sample of the same split, so a
detector can only separate them by the manipulation. Written as the ``folder``
layout with fixed ``train``/``val`` splits, deterministic for a seed::

    python -m deepfake_train.face_set images OUT_DIR
    python -m deepfake_train forensic --data OUT_DIR --out checkpoints

It proves the paths (data through the serving code, training, export), not a
detector anyone should deploy: one face, one synthetic manipulation.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

#: The astronaut's face as the served MTCNN finds it in the 512x512 photo (x1, y1, x2, y2, pixels).
#: Only where the manipulation goes: the samples' faces are found by the serving code when training.
FACE_BOX = (180.0, 61.0, 268.0, 172.0)
IMAGE_SIZE = 256  # pixels, square: small files, and the face stays well above MTCNN's 40 px minimum
VIDEO_FRAMES = 16  # the temporal analyzer samples 16 frames: all of them, so the flicker is kept whole
VIDEO_FPS = 8
#: Videos are close-ups (a window of 150-200 px of the photo: the face is 45-60% of the frame's width), as
#: face-swap footage usually is. The temporal analyzer sees whole frames, not face crops: with the
#: wider framing of the images the face is a tenth of the frame, and a 3D CNN trained from scratch for
#: a few epochs does not single it out from the clips' other differences (measured: val AUC near 0.6).
CLOSE_UP = (150, 200)
#: The flicker's colour and lighting mismatch, times an image fake's: strong enough for that short training.
FLICKER_STRENGTH = 2.5


@dataclass(frozen=True)
class Variant:
    """One varied real picture and where its face is."""

    image: np.ndarray  # uint8[IMAGE_SIZE, IMAGE_SIZE, 3] RGB
    box: tuple[float, float, float, float]  # the face, x1, y1, x2, y2 in the picture's pixels


def _photo() -> np.ndarray:
    from deepfake_serving.testing.media import astronaut

    return astronaut()


def vary(
    photo: np.ndarray,
    rng: np.random.Generator,
    size: int = IMAGE_SIZE,
    sides: tuple[int, int] = (210, 380),
    light: float = 0.2,
) -> Variant:
    """A random square window of ``photo`` around its face, resized to ``size``, mirrored and relit at random.

    The window's side (in ``sides``, pixels of the 512 photo) sets the face's
    size (60-110 px of 256 for the default), its position the face's place
    and how much background shows; ``light`` is the largest relative change of
    brightness and contrast.
    """
    height, width = photo.shape[:2]
    x1, y1, x2, y2 = FACE_BOX
    side = int(rng.uniform(*sides))
    # The window always holds the whole face with a little room, and stays inside the photo.
    left = int(rng.uniform(max(0, x2 + 10 - side), min(width - side, x1 - 10) + 1))
    top = int(rng.uniform(max(0, y2 + 10 - side), min(height - side, y1 - 10) + 1))
    window = photo[top : top + side, left : left + side]
    image = cv2.resize(window, (size, size), interpolation=cv2.INTER_AREA)
    scale = size / side
    box = ((x1 - left) * scale, (y1 - top) * scale, (x2 - left) * scale, (y2 - top) * scale)
    if rng.random() < 0.5:
        image = np.ascontiguousarray(image[:, ::-1])
        box = (size - box[2], box[1], size - box[0], box[3])
    # Brightness and contrast: the same for every channel, so the colour of a face stays a real face's.
    gain, offset = rng.uniform(1 - light, 1 + light), rng.uniform(-100, 100) * light
    image = np.clip(image.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    return Variant(image, box)


def face_mask(shape: tuple[int, int], box: tuple[float, float, float, float], feather: float = 1.5) -> np.ndarray:
    """``float32[h, w]`` in [0, 1]: an ellipse over the inner face of ``box``, with a narrow (visible) seam."""
    x1, y1, x2, y2 = box
    mask = np.zeros(shape, np.float32)
    center = (int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2 + 0.05 * (y2 - y1))))
    axes = (int(round(0.42 * (x2 - x1))), int(round(0.5 * (y2 - y1))))
    cv2.ellipse(mask, center, axes, 0, 0, 360, 1.0, -1)
    # A face swap's blend is feathered over a few pixels only: the boundary stays visible.
    return cv2.GaussianBlur(mask, (0, 0), feather)


def manipulate(variant: Variant, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """``variant``'s picture with a blurred, colour-shifted, JPEG-recompressed face blended in.

    ``strength`` scales the colour and lighting mismatch (1: red up and blue
    down by 12-20%, 10% darker).
    """
    image = variant.image
    face = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.8, 2.6)).astype(np.float32)
    # A warmer, darker face (red up, blue down, less light): the source face's skin tone and
    # lighting not matching the target's.
    shift = strength * rng.uniform(0.12, 0.2)
    tint = (1 - 0.1 * strength) * np.array([1 + shift, 1.0, 1 - shift], np.float32)
    face = np.clip(face * tint, 0, 255).astype(np.uint8)
    # The swapped face went through a generator's pipeline and was compressed once more than the rest
    # (OpenCV takes the RGB array for BGR: a byte-exact round trip all the same).
    ok, jpeg = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 50))])
    assert ok
    face = cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)
    mask = face_mask(image.shape[:2], variant.box)[..., None]
    return np.clip(mask * face + (1 - mask) * image, 0, 255).round().astype(np.uint8)


def _save_image(image: np.ndarray, path: Path, quality: int) -> None:
    from PIL import Image

    if path.suffix == ".png":
        Image.fromarray(image).save(path, format="PNG")
    else:
        Image.fromarray(image).save(path, format="JPEG", quality=quality)


def _splits(n: int, n_val: int | None) -> dict[str, int]:
    n_val = max(2, n // 2) if n_val is None else n_val
    if n < 1 or n_val < 1:
        raise ValueError(f"n and n_val must be at least 1 (both classes in both splits), got {n} and {n_val}")
    return {"train": n, "val": n_val}


def build_images(root: Path, n: int = 16, n_val: int | None = None, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write ``n`` real images and their ``n`` fakes to ``root/train``, ``n_val`` (default ``n // 2``, at least 2) of each to ``root/val``.

    Every fourth pair is PNG, the others JPEG at a random quality (85-95, the
    same for both of a pair), so that the file format tells nothing about the
    label. Returns ``{split: {"real": k, "fake": k}}``.
    """
    photo = _photo()
    counts: dict[str, dict[str, int]] = {}
    for split, count in _splits(n, n_val).items():
        for label in ("real", "fake"):
            (root / split / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            # One generator per sample (seed, split, index): a sample does not change when n does.
            rng = np.random.default_rng([seed, ("train", "val").index(split), i])
            variant = vary(photo, rng)
            fake = manipulate(variant, rng)
            quality, suffix = int(rng.integers(85, 96)), ".png" if i % 4 == 3 else ".jpg"
            _save_image(variant.image, root / split / "real" / f"astronaut-{i:03d}{suffix}", quality)
            _save_image(fake, root / split / "fake" / f"astronaut-{i:03d}-blend{suffix}", quality)
        counts[split] = {"real": count, "fake": count}
    return counts


def clip_frames(variant: Variant, rng: np.random.Generator, frames: int = VIDEO_FRAMES) -> tuple[list, list]:
    """``(real, fake)`` frames of one clip: ``variant`` in slight motion, and the same with a flickering face."""
    from deepfake_serving.testing.media_av import moving_frames

    size = variant.image.shape[0]
    real = moving_frames(variant.image, frames, size, size)
    # The manipulated picture moves exactly as the real one (same drift), so only the face differs.
    swapped = moving_frames(manipulate(variant, rng, FLICKER_STRENGTH), frames, size, size)
    # Every other frame manipulated: a per-frame face swap that fails to hold on its target.
    fake = [swapped[i] if i % 2 else real[i] for i in range(frames)]
    return real, fake


def build_videos(root: Path, n: int = 6, n_val: int | None = None, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write ``n`` real MP4 (H.264) clips and their ``n`` fakes to ``root/train``, ``n_val`` of each to ``root/val``.

    Each clip is :data:`VIDEO_FRAMES` frames of 256x256 at :data:`VIDEO_FPS`
    fps, without audio. Returns ``{split: {"real": k, "fake": k}}``.
    """
    from deepfake_serving.testing.media_av import encode_video

    photo = _photo()
    counts: dict[str, dict[str, int]] = {}
    for split, count in _splits(n, n_val).items():
        for label in ("real", "fake"):
            (root / split / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            rng = np.random.default_rng([seed, ("train", "val").index(split), i, 1])
            real, fake = clip_frames(vary(photo, rng, sides=CLOSE_UP), rng)
            (root / split / "real" / f"astronaut-{i:03d}.mp4").write_bytes(
                encode_video(real, VIDEO_FPS, "mp4_h264_aac")
            )
            path = root / split / "fake" / f"astronaut-{i:03d}-flicker.mp4"
            path.write_bytes(encode_video(fake, VIDEO_FPS, "mp4_h264_aac"))
        counts[split] = {"real": count, "fake": count}
    return counts


def main(argv: list[str] | None = None) -> int:
    """Build the image or the video dataset into the folder given."""
    parser = argparse.ArgumentParser(prog="python -m deepfake_train.face_set", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("images", "videos"), help="which dataset to write")
    parser.add_argument("out", type=Path, help="folder to write (the folder layout)")
    parser.add_argument("-n", type=int, default=None, help="real (and as many fake) files in train")
    parser.add_argument("--n-val", type=int, default=None, help="real (and as many fake) files in val (default n/2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build = build_images if args.kind == "images" else build_videos
    extra = {} if args.n is None else {"n": args.n}
    try:
        counts = build(args.out, n_val=args.n_val, seed=args.seed, **extra)
    except ValueError as error:
        print(f"face_set: {error}", file=sys.stderr)
        return 2
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
