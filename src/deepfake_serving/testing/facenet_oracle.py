"""facenet-pytorch's MTCNN as a test oracle, without torchvision (tests only).

facenet-pytorch 2.6.0 is installed with ``--no-deps`` next to a CPU build of
torch that torchvision cannot load beside ("operator torchvision::nms does
not exist"), and both its
package ``__init__`` and ``detect_face.py`` import torchvision. So the
package's own files are loaded by path under a private package name, without
running its ``__init__``, and ``detect_face.py`` gets a small pure-torch
stand-in for ``torchvision.ops.boxes.batched_nms`` (plus an empty
``torchvision.transforms.functional``, imported but unused by detection).
The stand-in is installed only while those files are imported, and only in
the modules' own namespace afterwards, so nothing else sees a fake torchvision.

Public helpers:

* :func:`load_nets` -> facenet's ``PNet``/``RNet``/``ONet`` with the
  pretrained weights shipped in the package (``data/*.pt``).
* :func:`torch_callables` -> the same nets as NumPy-in/NumPy-out callables,
  the interface :class:`deepfake_serving.mtcnn.MTCNN` expects.
* :func:`oracle_detect` -> facenet's own ``detect_face`` on one image, as
  ``(boxes, probs)`` sorted largest first like ``facenet_pytorch.MTCNN.detect``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch

_PKG = "_facenet_oracle"


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Pure-torch ``torchvision.ops.batched_nms`` (coordinate-offset trick, greedy IoU NMS)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    b = boxes + offsets[:, None]
    x1, y1, x2, y2 = b.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    order = scores.sort(stable=True, descending=True).indices
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        order = rest[~(iou > iou_threshold)]
    return torch.as_tensor(keep, dtype=torch.int64)


def package_dir() -> Path:
    """The installed facenet_pytorch folder, found without importing it."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("facenet-pytorch==2.6.0 is not installed (pip install --no-deps)")
    return Path(next(iter(spec.submodule_search_locations)))


def _fake_torchvision() -> dict[str, types.ModuleType]:
    mods = {
        name: types.ModuleType(name)
        for name in (
            "torchvision",
            "torchvision.ops",
            "torchvision.ops.boxes",
            "torchvision.transforms",
            "torchvision.transforms.functional",
        )
    }
    mods["torchvision.ops.boxes"].batched_nms = batched_nms
    for name, mod in mods.items():
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(mods[parent], child, mod)
    return mods


def _package(name: str, path: Path) -> None:
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    sys.modules[name] = mod


@functools.cache
def _modules() -> types.ModuleType:
    """facenet's ``models/mtcnn.py`` (which imports ``utils/detect_face.py``)."""
    root = package_dir()
    _package(_PKG, root)
    _package(f"{_PKG}.models", root / "models")
    _package(f"{_PKG}.models.utils", root / "models" / "utils")
    fake = _fake_torchvision()
    saved = {name: sys.modules.get(name) for name in fake}
    sys.modules.update(fake)
    try:
        return importlib.import_module(f"{_PKG}.models.mtcnn")
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


@functools.cache
def load_nets() -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """facenet's pretrained ``PNet``, ``RNet``, ``ONet`` in eval mode."""
    mtcnn = _modules()
    return tuple(net.eval() for net in (mtcnn.PNet(), mtcnn.RNet(), mtcnn.ONet()))


def torch_callables():
    """The pretrained nets as NumPy callables for ``deepfake_serving.mtcnn.MTCNN``."""

    def wrap(net: torch.nn.Module):
        def call(x: np.ndarray) -> tuple[np.ndarray, ...]:
            with torch.inference_mode():
                return tuple(o.numpy() for o in net(torch.from_numpy(x)))

        return call

    return tuple(wrap(net) for net in load_nets())


def oracle_detect(
    image: np.ndarray, *, min_face_size: float = 40, thresholds=(0.6, 0.7, 0.7), factor: float = 0.709
) -> tuple[np.ndarray, np.ndarray]:
    """facenet's ``detect_face`` on one HxWx3 uint8 image, ordered as ``MTCNN.detect``."""
    detect_face = _modules().detect_face
    pnet, rnet, onet = load_nets()
    with torch.inference_mode():
        batch_boxes, _ = detect_face(image, min_face_size, pnet, rnet, onet, list(thresholds), factor, "cpu")
    boxes = np.asarray(batch_boxes[0], dtype=np.float32).reshape(-1, 5)
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")
    boxes = boxes[order]
    return boxes[:, :4], boxes[:, 4]
