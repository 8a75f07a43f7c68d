"""The 12 forensic features (docs/models.md, forensic classifier), on 224x224 RGB face crops.

Features 1-11 are the reference implementation's, value for value: the unit test
keeps the reference verbatim as the oracle and checks every feature to a
relative 1e-4 (the observed differences are ~1e-15). The arithmetic is
rearranged where that is cheaper and exact:

- the spectrum comes from ``cv2.dft`` (float64) instead of
  ``scipy.fftpack.fft2``; ``fftshift`` is skipped because sums, mean, std and
  entropy do not depend on the order of the bins, and the centre block of the
  shifted spectrum is summed as the four corner blocks it came from;
- the entropy is written out (``scipy.stats.entropy`` normalizes
  ``p + 1e-10`` by its sum, and so does :func:`_spectral_features`);
- the noise is an int16 difference and the Laplacian is taken as int16 (its
  values fit); their variances come from exact integer sums
  (``cv2.sumElems``), which also keeps a zero variance exactly zero, and the
  noise's mean absolute value from ``cv2.norm``.

Cost, and why the denoise is split. ``cv2.fastNlMeansDenoisingColored`` is the
reference's own call and sets features 5-10, so it is kept as the same OpenCV code
on the same data. Internally it converts the image to Lab (``COLOR_LBGR2Lab``:
the reference passes RGB where OpenCV expects BGR, and that is reproduced), runs
``fastNlMeansDenoising`` on L (h=10) and then on ab (h=10), and converts back.
OpenCV splits that work into ``max(1, pixels / 2**17)`` stripes, which is one
stripe for a 224x224 crop: ``cv2.setNumThreads`` changes nothing and the call
runs on one core. :func:`nlm_denoise` performs the same three steps itself and
runs the L and ab passes (and those of the other crops of a batch, the slower
ab passes first) on a thread pool; OpenCV releases the GIL, so they run in
parallel, and the output is bit-identical to the reference (tested). The other
features are computed on the calling thread while the pool denoises.

Measured 2026-11-24 on the 2-core development machine (OpenCV 4.11.0.86,
NumPy 1.26.4, SciPy 1.17.1) with ``python -m perf.measure_forensics`` (20
astronaut crops, minimum of 5 interleaved runs). The machine's timings wander
by +-30% between runs (other load on the host), so the figures are the range
of the minima over four runs:

====================================================  ==========
per 224x224 crop                                       ms
====================================================  ==========
reference, whole function                             115-126
  ``fastNlMeansDenoisingColored`` alone               108-125
  everything else (FFT, entropy, noise, Laplacian)    ~3
this module, ``extract_forensic_features``            75-92
  the L pass (~42) and ab pass (~70-85) in parallel;
  the other features (~2.8: spectrum 2.2, noise 0.3,
  blocking 0.2, Laplacian 0.1) beside them
this module, ``extract_batch`` of 20                  61-80
this module, ``workers=1`` (no threads)               111-124
====================================================  ==========

One crop cannot go below its ab pass (about two thirds of the denoise); a batch
approaches the denoise's total CPU time divided by the cores. Splitting the
passes into row stripes (with 13 rows of overlap) would also be exact, but
costs ~12% more CPU for ~15% less single-crop latency, so it is not done.

Feature 12, ``blocking_score``, is a constant 0 placeholder in the reference;
this module computes a real one: see :func:`blocking_score`. It is measured on
the face's region at the image's own pixel grid, before the resize to 224
(:func:`region_blocking_score`, called by ``face_detector``, which sends it as
``FACE_BLOCKING``), and passed to :func:`extract_batch` as ``blocking``; without
it the crop's own value is used, which carries almost no signal (below).

Everything is returned as float64; the Triton model casts to float32 at its
output, so the one rounding happens in one place.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "high_freq_ratio",
    "spectral_entropy",
    "magnitude_mean",
    "magnitude_std",
    "noise_variance",
    "noise_mean",
    "noise_var_r",
    "noise_var_g",
    "noise_var_b",
    "noise_var_ratio",
    "sharpness",
    "blocking_score",
)
CROP_SHAPE = (224, 224, 3)
BLOCK = 8
BLOCKING_RANGE = (0.0, 20.0)

# The reference's call: fastNlMeansDenoisingColored(image, None, 10, 10, 7, 21).
_NLM_H = 10.0
_NLM_H_COLOR = 10.0
_NLM_TEMPLATE = 7
_NLM_SEARCH = 21

_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def default_workers() -> int:
    """Threads for the denoise: the cores this process may run on.

    ``sched_getaffinity`` rather than ``cpu_count`` so that a container or a
    ``taskset`` limit is respected.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _pool(workers: int | None) -> ThreadPoolExecutor | None:
    """A long-lived pool per size; ``None`` (run inline) for one worker."""
    count = default_workers() if workers is None else workers
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    if count == 1:
        return None
    with _pools_lock:
        pool = _pools.get(count)
        if pool is None:
            pool = _pools[count] = ThreadPoolExecutor(count, thread_name_prefix="forensics-nlm")
        return pool


def _check_crop(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != CROP_SHAPE:
        raise ValueError(f"expected a 224x224x3 uint8 RGB crop, got {_describe(image)}")
    return np.ascontiguousarray(image)


def _check_batch(crops: object) -> np.ndarray:
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.shape[1:] != CROP_SHAPE:
        raise ValueError(f"expected N x 224 x 224 x 3 uint8 RGB crops, got {_describe(crops)}")
    return np.ascontiguousarray(crops)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _nlm(plane: np.ndarray, h: float) -> np.ndarray:
    return cv2.fastNlMeansDenoising(plane, None, h, _NLM_TEMPLATE, _NLM_SEARCH)


def _submit(pool: ThreadPoolExecutor | None, plane: np.ndarray, h: float) -> Callable[[], np.ndarray]:
    """Start one denoise pass; the returned callable waits for its result."""
    if pool is None:
        result = _nlm(plane, h)
        return lambda: result
    future: Future[np.ndarray] = pool.submit(_nlm, plane, h)
    return future.result


class _Denoise:
    """The reference's colored NLM of one crop, its L and ab passes started separately."""

    def __init__(self, image: np.ndarray) -> None:
        # LBGR on an RGB image, exactly as fastNlMeansDenoisingColored does with the reference's input.
        self.lab = cv2.cvtColor(image, cv2.COLOR_LBGR2Lab)
        self.l_plane = np.ascontiguousarray(self.lab[..., 0])
        self.ab_planes = np.ascontiguousarray(self.lab[..., 1:])
        self._l: Callable[[], np.ndarray] | None = None
        self._ab: Callable[[], np.ndarray] | None = None

    def start_ab(self, pool: ThreadPoolExecutor | None) -> None:
        self._ab = _submit(pool, self.ab_planes, _NLM_H_COLOR)

    def start_l(self, pool: ThreadPoolExecutor | None) -> None:
        self._l = _submit(pool, self.l_plane, _NLM_H)

    def result(self) -> np.ndarray:
        assert self._l is not None and self._ab is not None, "start_l and start_ab first"
        lab = np.empty_like(self.lab)
        lab[..., 0] = self._l()
        lab[..., 1:] = self._ab()
        return cv2.cvtColor(lab, cv2.COLOR_Lab2LBGR)


def _start_denoising(crops: np.ndarray, pool: ThreadPoolExecutor | None) -> list[_Denoise]:
    jobs = [_Denoise(crop) for crop in crops]
    # Longest passes first (ab costs about twice L), so the pool's tail is short.
    for job in jobs:
        job.start_ab(pool)
    for job in jobs:
        job.start_l(pool)
    return jobs


def nlm_denoise(image: np.ndarray, *, workers: int | None = None) -> np.ndarray:
    """``cv2.fastNlMeansDenoisingColored(image, None, 10, 10, 7, 21)``, bit for bit, faster.

    Exposed so the equality with OpenCV's own call can be tested directly.
    """
    (job,) = _start_denoising(_check_crop(image)[None], _pool(workers))
    return job.result()


def _spectral_features(gray: np.ndarray) -> tuple[float, float, float, float]:
    """high_freq_ratio, spectral_entropy, magnitude_mean, magnitude_std."""
    spectrum = cv2.dft(gray.astype(np.float64), flags=cv2.DFT_COMPLEX_OUTPUT)
    magnitude = cv2.magnitude(spectrum[..., 0], spectrum[..., 1])
    total = float(magnitude.sum())
    if total == 0.0:
        # A black crop. The reference formulas divide by the spectrum's total; a
        # constant crop of level c > 0 has only the DC term (total = c*h*w), so
        # its ratio and entropy do not depend on c. Black gets their limit as
        # c -> 0: the DC-only spectrum's ratio (0) and entropy, mean and std 0.
        dc_only = np.zeros_like(magnitude)
        dc_only[0, 0] = 1.0
        ratio, entropy = _ratio_and_entropy(dc_only, 1.0)
        return ratio, entropy, 0.0, 0.0
    ratio, entropy = _ratio_and_entropy(magnitude, total)
    _, std = cv2.meanStdDev(magnitude)
    return ratio, entropy, total / magnitude.size, float(std[0, 0])


def _ratio_and_entropy(magnitude: np.ndarray, total: float) -> tuple[float, float]:
    """high_freq_ratio and spectral_entropy of an unshifted magnitude spectrum summing to ``total``."""
    h, w = magnitude.shape
    # Rows/columns of the unshifted spectrum that fftshift moves into [h//4, 3h//4).
    rows = np.fft.fftshift(np.arange(h))[h // 4 : 3 * h // 4]
    cols = np.fft.fftshift(np.arange(w))[w // 4 : 3 * w // 4]
    center = float(magnitude[np.ix_(rows, cols)].sum())
    # entropy(p) with p = m/total + 1e-10, normalized by s = sum(p):
    # -sum(p/s * log(p/s)) = log(s) - sum(p * log(p)) / s.
    p = magnitude.ravel() / total
    p += 1e-10
    s = float(p.sum())
    entropy = np.log(s) - float(np.dot(p, np.log(p))) / s
    return 1.0 - center / total, float(entropy)


def _sums(values: np.ndarray) -> tuple[list[int], list[int]]:
    """Per-channel sum and sum of squares of an int16 image, as exact integers.

    Exact because a constant channel must give a variance of exactly 0, as
    NumPy's two-pass ``var`` does: ``noise_var_ratio`` divides by
    ``min + 1e-10``, so a rounding residue of 1e-16 would come out as 1e-6.
    """
    channels = 1 if values.ndim == 2 else values.shape[2]
    # Doubles holding integers below 2**53: converting them back is exact.
    sums = [int(v) for v in cv2.sumElems(values)[:channels]]
    squares = [int(v) for v in cv2.sumElems(cv2.multiply(values, values, dtype=cv2.CV_32S))[:channels]]
    return sums, squares


def _variance(total: int, total_sq: int, count: int) -> float:
    """Population variance from exact sums, rounded once."""
    return (count * total_sq - total * total) / (count * count)


def _noise_features(image: np.ndarray, denoised: np.ndarray) -> tuple[float, ...]:
    """noise_variance, noise_mean, noise_var_r/g/b, noise_var_ratio."""
    noise = cv2.subtract(image, denoised, dtype=cv2.CV_16S)
    sums, squares = _sums(noise)
    pixels = noise.shape[0] * noise.shape[1]
    channel_var = [_variance(s, q, pixels) for s, q in zip(sums, squares, strict=True)]
    variance = _variance(sum(sums), sum(squares), 3 * pixels)
    mean_abs = cv2.norm(noise, cv2.NORM_L1) / noise.size
    ratio = max(channel_var) / (min(channel_var) + 1e-10)
    return variance, mean_abs, *channel_var, ratio


def _sharpness(gray: np.ndarray) -> float:
    laplacian = cv2.Laplacian(gray, cv2.CV_16S)  # |values| <= 4 * 255: exact in int16
    (total,), (total_sq,) = _sums(laplacian)
    return _variance(total, total_sq, laplacian.size)


def to_gray(image: np.ndarray) -> np.ndarray:
    """The luma every feature reads: OpenCV's RGB-to-gray conversion of uint8 RGB pixels."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _grid_ratio(steps: np.ndarray) -> float:
    """Largest (mean step on the grid / mean step off it) over the 8 grid offsets."""
    residue = np.arange(len(steps)) % BLOCK
    on_sum = np.bincount(residue, weights=steps, minlength=BLOCK)
    on_count = np.bincount(residue, minlength=BLOCK)
    off_mean = (steps.sum() - on_sum) / (len(steps) - on_count)
    return float(np.max(on_sum / on_count / (off_mean + 1e-6)))


def blocking_score(gray: np.ndarray) -> float:
    """JPEG 8x8 blockiness of a grayscale image, in [0, 20]: feature 12.

    JPEG quantizes each 8x8 block on its own, so compression puts luminance
    steps on block boundaries that the pixels inside a block do not have. With
    ``D_h[c]`` the mean over rows of ``|Y[r, c+1] - Y[r, c]|`` (one value per
    column boundary) and ``D_v`` the same down the rows::

        R_h = max over o in 0..7 of mean(D_h[c], c % 8 == o) / (mean(D_h[c], c % 8 != o) + 1e-6)
        score = clip(10 * ((R_h + R_v) / 2 - 1), 0, 20)

    A picture without block structure has R near 1 (score near 0; a flat one
    has R = 0, score 0); at quality 95 an aligned region scores ~0.3, at
    quality 20 ~8, at 10 ~15-19. The offset is searched because a face region
    need not start on the JPEG grid.

    Where it is computed: on the face's region **at the image's own pixel
    grid** (:func:`region_blocking_score`, the box of ``faces.face_region``
    before the resize), which ``face_detector`` does for every face and sends
    as ``FACE_BLOCKING``. The 224x224 crop is the wrong place: a box of any
    other size is resized to 224, which stretches the 8x8 grid to a
    non-integer period, and the crop's score then stays near its uncompressed
    level whatever the compression: on the astronaut's face (a ~122x162
    region) the region scores 5.07, 2.57, 0.62 and 0.57 at JPEG quality 30,
    60, 90 and as PNG, the crop 0.45, 0.85, 0.99 and 0.44
    (tests/unit/test_forensics_blocking.py). It is a relative measure of
    blockiness, not a calibrated JPEG quality estimate.
    """
    if not isinstance(gray, np.ndarray) or gray.dtype != np.uint8 or gray.ndim != 2 or min(gray.shape) < 2 * BLOCK:
        raise ValueError(f"expected a 2-D uint8 grayscale image of at least 16x16, got {_describe(gray)}")
    # |steps| as uint8 and their exact integer sums per column / row (OpenCV, ~4x NumPy's float
    # path on a large native-resolution face region, and the same means to the last bit).
    height, width = gray.shape
    horizontal = cv2.reduce(cv2.absdiff(gray[:, 1:], gray[:, :-1]), 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
    vertical = cv2.reduce(cv2.absdiff(gray[1:], gray[:-1]), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
    horizontal, vertical = horizontal.ravel() / height, vertical.ravel() / width
    ratio = (_grid_ratio(horizontal) + _grid_ratio(vertical)) / 2
    return float(np.clip(10.0 * (ratio - 1.0), *BLOCKING_RANGE))


def region_blocking_score(region: np.ndarray, crop: np.ndarray) -> float:
    """Feature 12 of one face: :func:`blocking_score` of ``region``'s luma.

    ``region`` is the uint8 RGB pixels the 224x224 ``crop`` was resized from,
    at the decoded image's own resolution (``image[faces.face_region(...)]``).
    A region under 16x16 pixels (a box clamped to a sliver at the image's
    edge) has too few block boundaries to measure; it gets the crop's own
    value instead, which is in the same range and as uninformative as a
    region that small.
    """
    if min(region.shape[:2]) < 2 * BLOCK:
        return blocking_score(to_gray(crop))
    return blocking_score(to_gray(region))


def _features(crops: np.ndarray, workers: int | None, blocking: np.ndarray | None = None) -> np.ndarray:
    out = np.empty((len(crops), len(FEATURE_NAMES)), dtype=np.float64)
    jobs = _start_denoising(crops, _pool(workers))
    # While the pool denoises: everything that needs only the crop.
    for index, (row, crop) in enumerate(zip(out, crops, strict=True)):
        gray = to_gray(crop)
        row[0:4] = _spectral_features(gray)
        row[10] = _sharpness(gray)
        row[11] = blocking_score(gray) if blocking is None else blocking[index]
    for row, crop, job in zip(out, crops, jobs, strict=True):
        row[4:10] = _noise_features(crop, job.result())
    return out


def _check_blocking(blocking: object, count: int) -> np.ndarray | None:
    if blocking is None:
        return None
    values = np.asarray(blocking, dtype=np.float64)
    if values.shape != (count,):
        raise ValueError(f"expected one blocking score per crop ({count}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("blocking scores must be finite")
    return values


def extract_forensic_features(image: np.ndarray, *, workers: int | None = None) -> np.ndarray:
    """The 12 features of one 224x224x3 uint8 RGB crop, float64, in :data:`FEATURE_NAMES` order.

    ``workers``: threads for the denoise (default: the usable cores; 1 runs
    everything on the calling thread). Raises ``ValueError`` for any other
    shape or dtype.
    """
    return _features(_check_crop(image)[None], workers)[0]


def extract_batch(crops: np.ndarray, *, workers: int | None = None, blocking: np.ndarray | None = None) -> np.ndarray:
    """The features of ``crops`` (N x 224 x 224 x 3 uint8 RGB) as float64[N, 12].

    Row ``i`` equals ``extract_forensic_features(crops[i])``; a batch is faster
    per crop because the denoise passes of all crops share the pool.
    ``blocking`` (N finite values), when given, is feature 12 of each crop,
    measured where it carries signal: at the image's own pixel grid
    (:func:`region_blocking_score`; ``DetectedFaces.blocking``). Without it
    feature 12 is computed on the crop itself. Raises ``ValueError`` for a
    ``blocking`` of another length.
    """
    checked = _check_batch(crops)
    return _features(checked, workers, _check_blocking(blocking, len(checked)))
