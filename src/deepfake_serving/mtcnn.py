"""MTCNN face detection cascade in NumPy, with the three networks injected.

This is a port of facenet-pytorch 2.6.0's ``detect_face``
(``facenet_pytorch/models/utils/detect_face.py``) with the parameters its
``MTCNN`` class uses (thresholds ``(0.6, 0.7, 0.7)``, pyramid factor 0.709),
except ``min_face_size``, which defaults to 40 pixels here (facenet-pytorch's
default is 20). The networks are plain callables so the same cascade runs on
PyTorch modules in tests, on ONNX Runtime sessions in a Python backend, or on
Triton BLS calls, and so that the caller decides how calls are batched:

* ``pnet(x: float32[N, 3, H, W]) -> (reg[N, 4, h, w], prob[N, 2, h, w])``
* ``rnet(x: float32[N, 3, 24, 24]) -> (reg[N, 4], prob[N, 2])``
* ``onet(x: float32[N, 3, 48, 48]) -> (reg[N, 4], landmarks[N, 10], prob[N, 2])``

which is the output order of facenet-pytorch's ``PNet``/``RNet``/``ONet``
``forward``; ``prob[:, 1]`` is the face probability. PNet is fully
convolutional and is called once per pyramid scale, so an exported PNet needs
dynamic height and width axes as well as a dynamic batch axis.

Fidelity notes, all chosen so boxes match facenet-pytorch's:

* Resampling: facenet resizes with ``torch.nn.functional.interpolate(...,
  mode="area")``, which is adaptive average pooling (each output pixel is the
  plain mean of the input pixels in ``[floor(i*in/out), ceil((i+1)*in/out))``
  along each axis). OpenCV's ``INTER_AREA`` weights partial pixels instead and
  upsamples bilinearly, so it does not reproduce it; :func:`resize_area`
  implements the pooling exactly (separably, in float32).
* Arithmetic is float32 throughout, as in torch; the pyramid scale is cast
  to float32 before dividing, exactly as torch does with a Python scalar,
  because the floor in the box generation is sensitive to it.
* NMS: stages 1-2 follow ``torchvision.ops.batched_nms`` (IoU, areas without
  ``+1``, stable descending score order); stage 3 follows facenet's own
  ``nms_numpy`` with the ``"Min"`` overlap and ``+1`` areas.
* facenet skips crops that are empty after clamping but keeps their boxes,
  which misaligns boxes and network outputs; here such boxes are dropped.

Landmarks are not returned: the deployment only needs boxes.

Cost limits. The cascade's work grows with its candidates (NMS is quadratic,
each R/O-Net candidate is resized on its own): a 16 MP image tiled with
48-pixel copies of one face took 57 s and 2.9 GB. Candidates are therefore
capped per stage (``max_candidates``: P-Net boxes per pyramid scale before
NMS, R-Net inputs, O-Net inputs); an image over a cap raises
:class:`TooManyCandidates`. Ordinary photos stay two orders of magnitude
below the caps (a one-face 512x512 image: 41 / 55 / 10; 441 faces tiled in
1 MP: 4,390 / 2,544 / 808, 1.2 CPU seconds). ``detect_batch`` also calls a
``check(step)`` callback between steps, where a caller enforces its time budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from deepfake_contract import FACE_DETECTOR

Array = np.ndarray
PNetFn = Callable[[Array], Sequence[Array]]

_STRIDE = 2
_CELL_SIZE = 12

#: (P-Net boxes per scale before NMS, R-Net inputs, O-Net inputs); see the module docstring.
DEFAULT_MAX_CANDIDATES = tuple(int(n) for n in str(FACE_DETECTOR.limits["max_candidates"]).split(","))
_STAGES = ("P-Net boxes at one scale", "R-Net candidates", "O-Net candidates")


class TooManyCandidates(ValueError):
    """An image whose face candidates exceed a stage's cap."""


def _no_check(step: str) -> None:
    pass


def resize_area(image: Array, size: tuple[int, int]) -> Array:
    """Resize an HxWxC image to ``size = (out_h, out_w)`` like torch's area mode.

    Exact adaptive average pooling, done one axis at a time (the pooling is
    separable because every output pixel averages a rectangle). Returns
    float32. Works for up- and downsampling.
    """
    out_h, out_w = size
    rows = _pool_axis(image, image.shape[0], out_h, axis=0)
    return _pool_axis(rows, image.shape[1], out_w, axis=1)


def _pool_axis(x: Array, n_in: int, n_out: int, axis: int) -> Array:
    """Average ``x`` along ``axis`` into ``n_out`` (possibly overlapping) bins.

    Bins are summed by gathering the d-th pixel of every bin at once, so the
    cost is about one pass over the input, with no per-bin Python loop.
    """
    i = np.arange(n_out, dtype=np.int64)
    start = (i * n_in) // n_out
    end = ((i + 1) * n_in + n_out - 1) // n_out
    length = end - start
    shape = [1] * x.ndim
    shape[axis] = n_out
    out_shape = list(x.shape)
    out_shape[axis] = n_out
    acc = np.zeros(out_shape, dtype=np.float32)
    for d in range(int(length.max())):
        valid = d < length
        idx = np.minimum(start + d, end - 1)
        taken = np.take(x, idx, axis=axis).astype(np.float32, copy=False)
        if valid.all():
            acc += taken
        else:
            acc += taken * valid.reshape(shape)
    acc /= length.reshape(shape).astype(np.float32)
    return acc


def _normalize(batch_nhwc: Array) -> Array:
    """facenet's input scaling, then NCHW for the networks."""
    x = (batch_nhwc - np.float32(127.5)) * np.float32(0.0078125)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def nms_iou(boxes: Array, scores: Array, threshold: float) -> Array:
    """Greedy NMS with torchvision's semantics (``torchvision.ops.nms``).

    Returns kept indices in descending score order; a box is suppressed when
    its IoU with a kept box is strictly greater than ``threshold``.
    """
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    boxes = boxes.astype(np.float32, copy=False)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[~(iou > threshold)]
    return np.asarray(keep, dtype=np.int64)


def nms_min(boxes: Array, scores: Array, threshold: float) -> Array:
    """facenet's ``nms_numpy(..., "Min")``: overlap over the smaller box, ``+1`` areas."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    keep = []
    while order.size > 0:
        i = order[-1]
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = (w * h) / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _per_image_nms(
    boxes: Array, image_ids: Array, threshold: float, nms: Callable[[Array, Array, float], Array]
) -> Array:
    """NMS within each image; indices returned in descending score order."""
    picks = []
    for image_id in np.unique(image_ids):
        members = np.flatnonzero(image_ids == image_id)
        picks.append(members[nms(boxes[members, :4], boxes[members, 4], threshold)])
    if not picks:
        return np.empty(0, dtype=np.int64)
    pick = np.concatenate(picks)
    return pick[np.argsort(-boxes[pick, 4], kind="stable")]


def generate_bounding_boxes(reg: Array, prob: Array, scale: float, threshold: float) -> tuple[Array, Array]:
    """Map PNet's score map cells over ``threshold`` back to image boxes.

    Returns ``(boxes[k, 9] = x1, y1, x2, y2, score, reg0..reg3; image index[k])``
    in the row-major cell order facenet uses.
    """
    face = prob[:, 1]
    img, yy, xx = np.nonzero(face >= threshold)
    score = face[img, yy, xx].astype(np.float32)
    offsets = reg[img, :, yy, xx].astype(np.float32).reshape(-1, 4)
    cell = np.stack([xx, yy], axis=1).astype(np.float32)
    scale32 = np.float32(scale)
    q1 = np.floor((_STRIDE * cell + 1) / scale32)
    q2 = np.floor((_STRIDE * cell + _CELL_SIZE) / scale32)
    boxes = np.concatenate([q1, q2, score[:, None], offsets], axis=1).astype(np.float32)
    return boxes, img.astype(np.int64)


def bbreg(boxes: Array, reg: Array) -> Array:
    """Apply R/O-Net box regression (``+1`` widths, as facenet)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def rerec(boxes: Array) -> Array:
    """Square boxes around their centres (side = the longer side)."""
    out = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * np.float32(0.5) - side * np.float32(0.5)
    out[:, 1] = boxes[:, 1] + h * np.float32(0.5) - side * np.float32(0.5)
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def pad(boxes: Array, widths: Array, heights: Array) -> tuple[Array, Array, Array, Array]:
    """Truncate boxes to ints and clamp to 1-based image bounds: ``(y, ey, x, ex)``.

    The crop is then ``image[y - 1:ey, x - 1:ex]`` (facenet's convention).
    """
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x = np.maximum(b[:, 0], 1)
    y = np.maximum(b[:, 1], 1)
    ex = np.minimum(b[:, 2], widths)
    ey = np.minimum(b[:, 3], heights)
    return y, ey, x, ex


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float) -> list[float]:
    """Scales at which a ``min_face_size`` face becomes PNet's 12-pixel cell."""
    m = 12.0 / min_face_size
    min_len = min(height, width) * m
    scales = []
    scale = m
    while min_len >= 12:
        scales.append(scale)
        scale *= factor
        min_len *= factor
    return scales


@dataclass
class _Candidates:
    """Boxes of all images of one ``detect_batch`` call, with their image index."""

    boxes: Array = field(default_factory=lambda: np.zeros((0, 5), np.float32))
    image_ids: Array = field(default_factory=lambda: np.zeros(0, np.int64))

    def take(self, idx: Array) -> _Candidates:
        return _Candidates(self.boxes[idx], self.image_ids[idx])


class MTCNN:
    """facenet-pytorch's MTCNN detection on injected networks.

    ``detect_batch`` runs PNet once per pyramid scale for all images of the
    same shape and R/ONet once per ``max_batch_size`` candidates across all
    images, so a Python backend can hand it a whole Triton batch.
    """

    def __init__(
        self,
        pnet: PNetFn,
        rnet: Callable[[Array], Sequence[Array]],
        onet: Callable[[Array], Sequence[Array]],
        *,
        min_face_size: float = 40,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        max_batch_size: int = 512,
        max_candidates: tuple[int, int, int] = DEFAULT_MAX_CANDIDATES,
    ) -> None:
        if min_face_size <= 0 or not 0 < factor < 1 or max_batch_size < 1 or min(max_candidates) < 1:
            raise ValueError(
                "min_face_size > 0, 0 < factor < 1, max_batch_size >= 1 and max_candidates >= 1 are required"
            )
        self.max_candidates = tuple(max_candidates)
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.min_face_size = min_face_size
        self.thresholds = tuple(thresholds)
        self.factor = factor
        self.max_batch_size = max_batch_size

    def _within(self, stage: int, count: int) -> None:
        if count > self.max_candidates[stage]:
            raise TooManyCandidates(
                f"{count} {_STAGES[stage]} exceed the limit of {self.max_candidates[stage]} (max_candidates); "
                "the image holds too many face-like patterns to search"
            )

    def detect(self, image: Array) -> tuple[Array, Array]:
        """Faces in one HxWx3 uint8 RGB image.

        Returns ``(boxes float32[n, 4] as x1, y1, x2, y2; probs float32[n])``,
        largest box first (facenet's ``select_largest=True`` order). Boxes may
        extend past the image borders.
        """
        return self.detect_batch([image])[0]

    def detect_batch(
        self, images: Sequence[Array], check: Callable[[str], None] = _no_check
    ) -> list[tuple[Array, Array]]:
        """:meth:`detect` for several images (any sizes) with batched network calls.

        ``check(step)`` is called between steps; whatever it raises ends the detection.
        """
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected HxWx3 uint8 RGB images, got {image.dtype} {image.shape}")
        sizes = np.array([image.shape[:2] for image in images], dtype=np.int64).reshape(-1, 2)
        cand = self._stage_one(images, check)
        check("face detection (R-Net)")
        self._within(1, len(cand.boxes))
        cand = self._stage_two(images, sizes, cand)
        check("face detection (O-Net)")
        self._within(2, len(cand.boxes))
        cand = self._stage_three(images, sizes, cand)
        return [self._result(cand, i) for i in range(len(images))]

    def _stage_one(self, images: Sequence[Array], check: Callable[[str], None]) -> _Candidates:
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(image.shape, []).append(i)
        parts = [self._pnet_group(images, ids, check) for ids in groups.values()]
        boxes = np.concatenate([p.boxes for p in parts] + [np.zeros((0, 9), np.float32)])
        image_ids = np.concatenate([p.image_ids for p in parts] + [np.zeros(0, np.int64)])
        cand = _Candidates(boxes, image_ids)
        cand = cand.take(_per_image_nms(cand.boxes, cand.image_ids, 0.7, nms_iou))
        b = cand.boxes
        regw = b[:, 2] - b[:, 0]
        regh = b[:, 3] - b[:, 1]
        refined = np.stack(
            [
                b[:, 0] + b[:, 5] * regw,
                b[:, 1] + b[:, 6] * regh,
                b[:, 2] + b[:, 7] * regw,
                b[:, 3] + b[:, 8] * regh,
                b[:, 4],
            ],
            axis=1,
        )
        return _Candidates(rerec(refined.astype(np.float32)), cand.image_ids)

    def _pnet_group(self, images: Sequence[Array], ids: list[int], check: Callable[[str], None]) -> _Candidates:
        """Stage 1 for same-shaped images: PNet per scale, NMS 0.5 per scale and image."""
        h, w = images[ids[0]].shape[:2]
        found = []
        for scale in pyramid_scales(h, w, self.min_face_size, self.factor):
            size = (int(h * scale + 1), int(w * scale + 1))
            for chunk in _chunks(ids, self.max_batch_size):
                check("face detection (P-Net)")
                x = _normalize(np.stack([resize_area(images[i], size) for i in chunk]))
                reg, prob = (np.asarray(o) for o in self.pnet(x))
                boxes, local = generate_bounding_boxes(reg, prob, scale, self.thresholds[0])
                self._within(0, len(boxes))
                image_ids = np.asarray(chunk, dtype=np.int64)[local]
                keep = _per_image_nms(boxes, image_ids, 0.5, nms_iou)
                found.append(_Candidates(boxes[keep], image_ids[keep]))
        if not found:
            return _Candidates(np.zeros((0, 9), np.float32), np.zeros(0, np.int64))
        return _Candidates(np.concatenate([f.boxes for f in found]), np.concatenate([f.image_ids for f in found]))

    def _crops(self, images: Sequence[Array], sizes: Array, cand: _Candidates, side: int) -> tuple[_Candidates, Array]:
        """Resize each candidate's clamped region to ``side`` pixels; drop empty ones."""
        ids = cand.image_ids
        y, ey, x, ex = pad(cand.boxes, sizes[ids, 1], sizes[ids, 0])
        ok = (ey > y - 1) & (ex > x - 1)
        crops = [
            resize_area(images[ids[k]][y[k] - 1 : ey[k], x[k] - 1 : ex[k]], (side, side)) for k in np.flatnonzero(ok)
        ]
        batch = np.stack(crops) if crops else np.zeros((0, side, side, 3), np.float32)
        return cand.take(ok), _normalize(batch)

    def _run(self, net: Callable[[Array], Sequence[Array]], x: Array) -> list[Array]:
        """Call ``net`` in chunks of ``max_batch_size`` and concatenate each output."""
        outs = [
            [np.asarray(o) for o in net(x[i : i + self.max_batch_size])] for i in range(0, len(x), self.max_batch_size)
        ]
        return [np.concatenate(parts) for parts in zip(*outs, strict=True)]

    def _stage_two(self, images: Sequence[Array], sizes: Array, cand: _Candidates) -> _Candidates:
        cand, x = self._crops(images, sizes, cand, 24)
        if len(x) == 0:
            return cand
        reg, prob = self._run(self.rnet, x)[:2]
        score = prob[:, 1].astype(np.float32)
        ok = score > self.thresholds[1]
        boxes = np.concatenate([cand.boxes[ok, :4], score[ok, None]], axis=1)
        cand, reg = _Candidates(boxes, cand.image_ids[ok]), reg[ok].astype(np.float32)
        pick = _per_image_nms(cand.boxes, cand.image_ids, 0.7, nms_iou)
        cand = cand.take(pick)
        return _Candidates(rerec(bbreg(cand.boxes, reg[pick])), cand.image_ids)

    def _stage_three(self, images: Sequence[Array], sizes: Array, cand: _Candidates) -> _Candidates:
        cand, x = self._crops(images, sizes, cand, 48)
        if len(x) == 0:
            return cand
        outs = self._run(self.onet, x)
        reg, prob = outs[0], outs[-1]
        score = prob[:, 1].astype(np.float32)
        ok = score > self.thresholds[2]
        boxes = np.concatenate([cand.boxes[ok, :4], score[ok, None]], axis=1)
        cand = _Candidates(bbreg(boxes, reg[ok].astype(np.float32)), cand.image_ids[ok])
        return cand.take(_per_image_nms(cand.boxes, cand.image_ids, 0.7, nms_min))

    @staticmethod
    def _result(cand: _Candidates, image_id: int) -> tuple[Array, Array]:
        boxes = cand.boxes[cand.image_ids == image_id]
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = boxes[np.argsort(-area, kind="stable")]
        return np.ascontiguousarray(boxes[:, :4], dtype=np.float32), np.ascontiguousarray(boxes[:, 4], dtype=np.float32)


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
