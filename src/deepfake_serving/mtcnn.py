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
  upsamples bilinearly, so it does not reproduce it; :class:`AreaSampler`
  computes the pooling exactly from an integral image (each mean correctly
  rounded, within one unit in the last place of torch's).
* Arithmetic is float32 throughout, as in torch; the pyramid scale is cast
  to float32 before dividing, exactly as torch does with a Python scalar,
  because the floor in the box generation is sensitive to it.
* NMS: stages 1-2 follow ``torchvision.ops.batched_nms`` (IoU, areas without
  ``+1``, stable descending score order); stage 3 follows facenet's own
  ``nms_numpy`` with the ``"Min"`` overlap and ``+1`` areas.
* facenet skips crops that are empty after clamping but keeps their boxes,
  which misaligns boxes and network outputs; here such boxes are dropped.

Landmarks are not returned: the deployment only needs boxes.

Speed (``perf/measure_mtcnn.py``, figures in ``perf/RESULTS.md``). Most of
the time used to go into resizing: about 200 R/O-Net crops of a 1080p frame,
each resized on its own. The integral image makes every resize a gather of
its output's size, all crops of a stage at once. The networks are small, so
ONNX Runtime runs them single-threaded and ``workers`` threads run several
calls side by side (the pyramid's scales, parts of the R/O-Net batches),
while the calling thread prepares the next input.

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

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from deepfake_contract import FACE_DETECTOR

Array = np.ndarray
PNetFn = Callable[[Array], Sequence[Array]]

_STRIDE = 2
_CELL_SIZE = 12
_NMS_BLOCK = 256  # rows of the IoU matrix held at once
_CROP_CHUNK = 256  # R/O-Net candidates per task: bounds the gathers' temporaries

#: (P-Net boxes per scale before NMS, R-Net inputs, O-Net inputs); see the module docstring.
DEFAULT_MAX_CANDIDATES = tuple(int(n) for n in str(FACE_DETECTOR.limits["max_candidates"]).split(","))
_STAGES = ("P-Net boxes at one scale", "R-Net candidates", "O-Net candidates")


class TooManyCandidates(ValueError):
    """An image whose face candidates exceed a stage's cap."""


def _no_check(step: str) -> None:
    pass


def resize_area(image: Array, size: tuple[int, int]) -> Array:
    """Resize an HxWx3 uint8 image to ``size = (out_h, out_w)`` like torch's area mode (float32).

    Works for up- and downsampling. See :class:`AreaSampler`.
    """
    return AreaSampler(image).resize(size)


class AreaSampler:
    """Area-mode resizes of one uint8 image, and of any of its rectangles, from its integral image.

    torch's area mode is adaptive average pooling: output pixel ``(i, j)`` is
    the mean of the input rectangle ``[floor(i*h/out_h), ceil((i+1)*h/out_h))``
    by the same along the width. With the integral image (exact integer
    prefix sums, ``cv2.integral``), each rectangle's sum is four lookups, so a
    resize costs its output's size, not passes over its input, and all R/O-Net
    candidates of an image are resized by one gather instead of one call each
    (the 1080p frame with six faces: about 200 crops). The sums are exact
    integers, divided once and rounded once to float32 (exactly: they are
    below 2**24 where float32 division is used, and float64 division rounded
    to float32 equals a single rounding, 53 >= 2 * 24 + 2 bits), so each pixel
    is the correctly rounded mean; torch divides the float32 sum by the height
    and then by the width, so it can differ from this by one unit in the last place.
    """

    def __init__(self, image: Array) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        # int32 prefix sums are exact below 2**31 (about 8 MP); float64 ones up to 2**53.
        depth = cv2.CV_32S if 255 * h * w < 2**31 else cv2.CV_64F
        # A fourth (ignored) channel makes each lookup 16 or 32 bytes, which NumPy's take copies
        # about twice as fast as 12 or 24.
        self._rows = cv2.integral(cv2.cvtColor(image, cv2.COLOR_RGB2RGBA), sdepth=depth).reshape(-1, 4)
        self._stride = w + 1
        self.shape = image.shape

    def resize(self, size: tuple[int, int]) -> Array:
        """The whole image at ``size = (out_h, out_w)``: float32[out_h, out_w, 3]."""
        h, w = self.shape[:2]
        zero = np.zeros(1, np.int64)
        return self.regions(zero, zero + h, zero, zero + w, size)[0]

    def regions(self, y0: Array, y1: Array, x0: Array, x1: Array, size: tuple[int, int]) -> Array:
        """Rectangles ``[y0, y1) x [x0, x1)`` (non-empty, inside the image), each at ``size``.

        Returns float32[K, out_h, out_w, 3].
        """
        ys, ye = _bins(np.asarray(y0, np.int64), np.asarray(y1, np.int64), size[0])
        xs, xe = _bins(np.asarray(x0, np.int64), np.asarray(x1, np.int64), size[1])
        rs, re = ys * self._stride, ye * self._stride

        def corner(rows: Array, cols: Array) -> Array:
            return self._rows.take((rows[:, :, None] + cols[:, None, :]).ravel(), axis=0)

        sums = corner(re, xe)
        sums -= corner(rs, xe)
        sums -= corner(re, xs)
        sums += corner(rs, xs)
        area = ((ye - ys)[:, :, None] * (xe - xs)[:, None, :]).reshape(-1, 1)
        if sums.dtype == np.int32 and 255 * int(area.max()) < 2**24:
            means = sums.astype(np.float32)
            means /= area.astype(np.float32)
        else:
            means = (sums / area).astype(np.float32)
        return means.reshape(len(ys), size[0], size[1], 4)[..., :3]


def _bins(start: Array, end: Array, n_out: int) -> tuple[Array, Array]:
    """Adaptive-pooling bin bounds ``[K, n_out]`` of the segments ``[start, end)``."""
    n_in = (end - start)[:, None]
    i = np.arange(n_out, dtype=np.int64)[None, :]
    return start[:, None] + (i * n_in) // n_out, start[:, None] + ((i + 1) * n_in + n_out - 1) // n_out


def _normalize(batch_nhwc: Array) -> Array:
    """facenet's input scaling, then NCHW for the networks."""
    x = (batch_nhwc - np.float32(127.5)) * np.float32(0.0078125)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def nms_iou(boxes: Array, scores: Array, threshold: float) -> Array:
    """Greedy NMS with torchvision's semantics (``torchvision.ops.nms``).

    Returns kept indices in descending score order; a box is suppressed when
    its IoU with a kept box is strictly greater than ``threshold``. The IoUs
    are computed a block of rows at a time against all boxes, with the same
    float32 operations in the same order as one row at a time, so the result
    is the same; the greedy pass then only reads the block.
    """
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(c) for c in boxes.astype(np.float32, copy=False)[order, :4].T)
    area = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for first in range(0, len(order), _NMS_BLOCK):
        rows = slice(first, first + _NMS_BLOCK)
        w = np.maximum(np.float32(0), np.minimum(x2[rows, None], x2) - np.maximum(x1[rows, None], x1))
        h = np.maximum(np.float32(0), np.minimum(y2[rows, None], y2) - np.maximum(y1[rows, None], y1))
        inter = w * h
        over = inter / (area[rows, None] + area - inter) > threshold
        for i, row in enumerate(over, start=first):
            if not suppressed[i]:
                keep.append(i)
                suppressed |= row
    return order[np.asarray(keep, dtype=np.int64)]


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
        workers: int = 1,
    ) -> None:
        """``workers`` > 1 runs the pyramid's scales, and parts of the R/O-Net batches, on that many threads.

        The networks must then be safe to call from several threads (ONNX
        Runtime sessions and torch modules in inference mode are). The R/O-Net
        candidates are then sent in more, smaller batches, and every result is
        put back in order: the boxes are those of one worker up to the
        networks' own rounding at another batch size (bit for bit with
        networks that round alike at any batch size; tested).
        """
        if min_face_size <= 0 or not 0 < factor < 1 or max_batch_size < 1 or min(max_candidates) < 1 or workers < 1:
            raise ValueError(
                "min_face_size > 0, 0 < factor < 1, max_batch_size >= 1, max_candidates >= 1 and workers >= 1"
                " are required"
            )
        self.workers = workers
        # The caller is one of the workers (see _run_all); ONNX Runtime releases the GIL, so the runs overlap.
        self._pool = ThreadPoolExecutor(workers - 1, thread_name_prefix="mtcnn") if workers > 1 else None
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
        samplers = [AreaSampler(image) for image in images]
        cand = self._stage_one(samplers, check)
        check("face detection (R-Net)")
        self._within(1, len(cand.boxes))
        cand = self._stage_two(samplers, sizes, cand)
        check("face detection (O-Net)")
        self._within(2, len(cand.boxes))
        cand = self._stage_three(samplers, sizes, cand)
        return [self._result(cand, i) for i in range(len(images))]

    def _stage_one(self, samplers: Sequence[AreaSampler], check: Callable[[str], None]) -> _Candidates:
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, sampler in enumerate(samplers):
            groups.setdefault(sampler.shape, []).append(i)
        parts = [self._pnet_group(samplers, ids, check) for ids in groups.values()]
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

    def _pnet_group(self, samplers: Sequence[AreaSampler], ids: list[int], check: Callable[[str], None]) -> _Candidates:
        """Stage 1 for same-shaped images: PNet per scale, NMS 0.5 per scale and image."""
        h, w = samplers[ids[0]].shape[:2]
        steps = [
            (scale, chunk)
            for scale in pyramid_scales(h, w, self.min_face_size, self.factor)
            for chunk in _chunks(ids, self.max_batch_size)
        ]

        def inputs() -> Iterator[Array]:
            for scale, chunk in steps:
                check("face detection (P-Net)")
                size = (int(h * scale + 1), int(w * scale + 1))
                yield _normalize(np.stack([samplers[i].resize(size) for i in chunk]))

        found = []
        for (scale, chunk), (reg, prob) in zip(steps, self._run_all(self.pnet, inputs()), strict=True):
            boxes, local = generate_bounding_boxes(reg, prob, scale, self.thresholds[0])
            self._within(0, len(boxes))
            image_ids = np.asarray(chunk, dtype=np.int64)[local]
            keep = _per_image_nms(boxes, image_ids, 0.5, nms_iou)
            found.append(_Candidates(boxes[keep], image_ids[keep]))
        if not found:
            return _Candidates(np.zeros((0, 9), np.float32), np.zeros(0, np.int64))
        return _Candidates(np.concatenate([f.boxes for f in found]), np.concatenate([f.image_ids for f in found]))

    def _run_all(self, net: Callable[[Array], Sequence[Array]], batches: Iterable[Array]) -> list[list[Array]]:
        """``net(batch)`` for each batch, in order.

        With workers, each batch goes to the pool as soon as it is made (the
        calling thread makes the next one meanwhile: ONNX Runtime releases the
        GIL, NumPy's gathers do not, so the resizing stays on one thread; two
        threads resizing at once were slower than one). Then the calling
        thread becomes a worker too: it takes the batches no pool thread has
        started, from the last one back, so ``workers`` threads run in all.
        """
        if self._pool is None:
            return [[np.asarray(o) for o in net(batch)] for batch in batches]
        jobs: list[tuple[Array, Future]] = []
        try:
            for batch in batches:
                jobs.append((batch, self._pool.submit(net, batch)))
            results: list[Sequence[Array] | None] = [None] * len(jobs)
            for i in reversed(range(len(jobs))):
                if not jobs[i][1].cancel():
                    break
                results[i] = net(jobs[i][0])
            return [
                [np.asarray(o) for o in (r if r is not None else job.result())]
                for r, (_, job) in zip(results, jobs, strict=True)
            ]
        finally:
            for _, job in jobs:
                job.cancel()

    def _crop_and_run(
        self,
        net: Callable[[Array], Sequence[Array]],
        samplers: Sequence[AreaSampler],
        sizes: Array,
        cand: _Candidates,
        side: int,
    ) -> tuple[_Candidates, list[Array]]:
        """Resize each candidate's clamped region to ``side`` pixels (dropping empty ones) and run ``net`` on them.

        The candidates go in parts of at most ``max_batch_size`` (and one per
        worker at least). Returns the kept candidates and ``net``'s outputs for
        them, in order.
        """
        y, ey, x, ex = pad(cand.boxes, sizes[cand.image_ids, 1], sizes[cand.image_ids, 0])
        ok = (ey > y - 1) & (ex > x - 1)
        cand, y, ey, x, ex = cand.take(ok), y[ok], ey[ok], x[ok], ex[ok]
        count = len(cand.boxes)
        if count == 0:
            return cand, []
        # Two parts per worker: the first network run starts while the later parts are still being cropped.
        size = min(self.max_batch_size, _CROP_CHUNK, max(1, -(-count // (2 * self.workers))))

        def batches() -> Iterator[Array]:
            for first in range(0, count, size):
                part = slice(first, min(first + size, count))
                batch = np.empty((part.stop - first, side, side, 3), np.float32)
                ids = cand.image_ids[part]
                for image_id in np.unique(ids):
                    k = np.flatnonzero(ids == image_id)
                    g = k + first
                    batch[k] = samplers[image_id].regions(y[g] - 1, ey[g], x[g] - 1, ex[g], (side, side))
                yield _normalize(batch)

        outs = self._run_all(net, batches())
        return cand, [np.concatenate(parts) for parts in zip(*outs, strict=True)]

    def _stage_two(self, samplers: Sequence[AreaSampler], sizes: Array, cand: _Candidates) -> _Candidates:
        cand, outs = self._crop_and_run(self.rnet, samplers, sizes, cand, 24)
        if not outs:
            return cand
        reg, prob = outs[:2]
        score = prob[:, 1].astype(np.float32)
        ok = score > self.thresholds[1]
        boxes = np.concatenate([cand.boxes[ok, :4], score[ok, None]], axis=1)
        cand, reg = _Candidates(boxes, cand.image_ids[ok]), reg[ok].astype(np.float32)
        pick = _per_image_nms(cand.boxes, cand.image_ids, 0.7, nms_iou)
        cand = cand.take(pick)
        return _Candidates(rerec(bbreg(cand.boxes, reg[pick])), cand.image_ids)

    def _stage_three(self, samplers: Sequence[AreaSampler], sizes: Array, cand: _Candidates) -> _Candidates:
        cand, outs = self._crop_and_run(self.onet, samplers, sizes, cand, 48)
        if not outs:
            return cand
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
