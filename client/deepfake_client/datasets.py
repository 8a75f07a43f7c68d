"""Labelled deepfake datasets, read from the folder layouts they are distributed (or kept) in.

Training (``python -m deepfake_train ... --data DIR --layout L``) and evaluation
(``deepfake-eval DIR --layout L``) must agree on which file is real, which is fake and which split
it belongs to, or a model is scored on what it was trained on; so that answer is computed here,
once. Media files are never opened: only names, folders and the datasets' own list files are read,
which keeps this module free of decoders (standard library only).

Layouts (``DIR`` is the ``root`` given to :func:`load_dataset`):

``folder``
    ``DIR/real/**`` and ``DIR/fake/**``, train/val split by a seeded ratio; or
    ``DIR/train/{real,fake}/**`` with optional ``DIR/val/...`` and ``DIR/test/...`` (when val is
    absent it is split from train). Folder names are matched case-insensitively, and
    ``validation``/``valid`` are accepted for ``val``. Group: the path relative to DIR without
    its suffix (one file, one group).
``faceforensics``
    FaceForensics++ with its official ``train/val/test.json`` pair splits. Group: the pair
    ``"a_b"`` (smaller id first), shared by the two real videos and their fakes.
``celebdf``
    Celeb-DF v2; ``List_of_testing_videos.txt`` is the test split, the rest is split by the seeded
    ratio. Group: the identity of the target (see :func:`load_dataset`).
``asvspoof2019``
    ASVspoof 2019 LA, split by its protocol files. Group: the speaker.

The seeded train/val split never puts one group in two splits, and splits each kind of group
separately so that both classes reach val (see :func:`load_dataset`).
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

__all__ = [
    "FAKE",
    "LAYOUTS",
    "MEDIA_SUFFIXES",
    "REAL",
    "SPLITS",
    "DatasetError",
    "Item",
    "load_dataset",
    "summarize",
]

REAL, FAKE = 0, 1
SPLITS = ("train", "val", "test")
LAYOUTS: tuple[str, ...] = ("folder", "faceforensics", "celebdf", "asvspoof2019")

#: Lower-case file suffix -> media kind. The same formats the server accepts; anything else in a
#: dataset folder (labels, masks, notes) is not a sample and is skipped.
MEDIA_SUFFIXES: dict[str, str] = {
    **dict.fromkeys((".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"), "image"),
    **dict.fromkeys((".wav", ".flac", ".mp3", ".ogg", ".opus"), "audio"),
    **dict.fromkeys((".mp4", ".mov", ".webm", ".avi", ".mkv"), "video"),
}

_CLASS_NAMES = {REAL: "real", FAKE: "fake"}


@dataclass(frozen=True)
class Item:
    """One labelled media file of a dataset.

    Attributes:
        path: absolute path of the media file.
        label: :data:`REAL` (0) or :data:`FAKE` (1).
        split: one of :data:`SPLITS`.
        group: what must never be split across train/val/test (each layout says what it is);
            also the "video id" that evaluation reports use.
        media: ``"image"``, ``"audio"`` or ``"video"``, from the file extension.
    """

    path: Path
    label: int
    split: str
    group: str
    media: str

    def __post_init__(self) -> None:
        # A mislabelled item silently poisons training; catch it where it is made.
        if self.label not in _CLASS_NAMES:
            raise ValueError(f"label must be REAL (0) or FAKE (1), not {self.label!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {self.split!r}")


class DatasetError(ValueError):
    """A dataset that is not in the layout asked for, or is inconsistent.

    The message says, in one line, which layout, what was expected and what was found (paths
    relative to the dataset root, written ``DIR/...``); the three parts are also attributes.
    """

    def __init__(self, message: str, *, layout: str = "", expected: str = "", found: str = "") -> None:
        super().__init__(message)
        self.layout = layout
        self.expected = expected
        self.found = found


def load_dataset(
    root: Path | str,
    layout: str = "folder",
    *,
    val_ratio: float = 0.2,
    seed: int = 0,
    compression: str = "c23",
    methods: Sequence[str] | None = None,
) -> list[Item]:
    """Every labelled media file of the dataset at ``root``, sorted by (split order, path).

    Args:
        root: the dataset folder (``DIR``).
        layout: one of :data:`LAYOUTS` (case-insensitive).
        val_ratio: share of groups moved from train to val where the layout has no official
            validation split (``folder`` without ``DIR/val``, ``celebdf``); 0 keeps everything
            in train. Must be in [0, 1).
        seed: seeds that split; the same seed gives the same split.
        compression: ``faceforensics`` only: ``"raw"`` (alias ``"c0"``), ``"c23"`` or ``"c40"``.
        methods: ``faceforensics`` only: manipulation methods to include; None means every one
            of Deepfakes, Face2Face, FaceSwap, NeuralTextures and FaceShifter present on disk at
            that compression (DeepFakeDetection has other sources, so only when named).

    Seeded split: the train groups are stratified by the set of labels each holds (real only,
    fake only, both); in each stratum the sorted groups are shuffled with
    ``random.Random(seed)`` and the first ``round(val_ratio * n)`` go to val, at least 1 and at
    most ``n - 1`` when the stratum has 2 or more groups (a lone group stays in train, so train
    keeps both classes). Items of one group always share a split.

    Celeb-DF grouping: ``Celeb-real/idX_NNNN`` and ``Celeb-synthesis/idX_idY_NNNN`` (``idY``'s
    face swapped into ``idX``'s video ``idX_NNNN``) are grouped by the target ``idX``, so a real
    video, every fake made from it, and the rest of that person's real videos stay in one split.
    The swapped-in face ``idY`` can still appear in another split: swaps chain the identities
    together, so grouping by both ids would merge nearly every video into one group.
    ``YouTube-real`` videos are grouped by their own stem; so are the test videos, whose split is
    the official list's (it lists videos, not identities, so a test video's people may also
    appear in train/val; kept as is so results compare with published ones).

    Raises:
        DatasetError: unknown layout, missing root, a tree that does not match the layout, an
            inconsistent list or protocol file, or a train split without real or without fake
            items.
    """
    name = layout.lower() if isinstance(layout, str) else layout
    if name not in LAYOUTS:
        expected = f"a layout among {', '.join(LAYOUTS)}"
        raise DatasetError(f"unknown dataset layout: expected {expected}; found {layout!r}", expected=expected)
    base = Path(root).expanduser()
    if not base.is_dir():
        found = "a file, not a folder" if base.exists() else "nothing there"
        raise DatasetError(
            f"{name} dataset at {base}: expected a dataset folder; found {found}",
            layout=name,
            expected="a dataset folder",
            found=found,
        )
    base = base.resolve()
    tree = _Tree(base, name)
    if not 0 <= val_ratio < 1:
        raise tree.error("val_ratio in [0, 1)", repr(val_ratio))
    if name == "folder":
        items = _load_folder(tree, val_ratio, seed)
    elif name == "faceforensics":
        items = _load_faceforensics(tree, compression, methods)
    elif name == "celebdf":
        items = _load_celebdf(tree, val_ratio, seed)
    else:
        items = _load_asvspoof2019(tree)
    _require_both_classes_in_train(tree, items)
    return sorted(items, key=lambda item: (SPLITS.index(item.split), item.path))


def summarize(items: Sequence[Item]) -> dict[str, dict[str, int]]:
    """Counts per split and class: ``{"train": {"real": n, "fake": m}, ...}``, only the splits present, in SPLITS order."""
    counts = {split: {"real": 0, "fake": 0} for split in SPLITS}
    present = set()
    for item in items:
        counts[item.split][_CLASS_NAMES[item.label]] += 1
        present.add(item.split)
    return {split: counts[split] for split in SPLITS if split in present}


# --- the tree and its errors --------------------------------------------------------------------


class _Tree:
    """The dataset root and its layout, so every refusal is worded the same way."""

    def __init__(self, root: Path, layout: str) -> None:
        self.root = root
        self.layout = layout

    def error(self, expected: str, found: str) -> DatasetError:
        """The one-line refusal: which layout, what was expected, what was found."""
        return DatasetError(
            f"{self.layout} dataset at {self.root}: expected {expected}; found {found}",
            layout=self.layout,
            expected=expected,
            found=found,
        )

    def rel(self, path: Path) -> str:
        """``path`` as users see it in messages: ``DIR/...``, relative to the root."""
        relative = path.relative_to(self.root).as_posix()
        return "DIR" if relative == "." else f"DIR/{relative}"

    def entries(self, directory: Path, limit: int = 12) -> str:
        """The visible entries of ``directory``, folders marked ``/``, for the "found" part of a message."""
        try:
            names = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(directory) if _visible(e.name))
        except OSError:
            return f"{self.rel(directory)} unreadable"
        if not names:
            return f"{self.rel(directory)} empty"
        more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
        return f"{self.rel(directory)} has " + ", ".join(names[:limit]) + more

    def missing_dir(self, relative: str) -> str:
        """What is there instead of ``relative``: the first missing component and its parent's entries."""
        current = self.root
        for part in PurePosixPath(relative).parts:
            if not (current / part).is_dir():
                return f"no {part}/ ({self.entries(current)})"
            current = current / part
        return f"{self.rel(current)}/"

    def child_dir(self, parent: Path, names: Iterable[str]) -> Path | None:
        """The sub-folder of ``parent`` called one of ``names`` in any letter case, or None.

        Datasets collected by hand spell ``Real``/``real``, ``Val``/``validation``; two
        candidates at once (``real/`` and ``Real/``) would be guessing, so they are refused.
        """
        wanted = {name.lower() for name in names}
        try:
            matches = sorted(Path(e.path) for e in os.scandir(parent) if e.name.lower() in wanted and e.is_dir())
        except OSError:
            return None
        if len(matches) > 1:
            raise self.error(
                f"one folder among {', '.join(sorted(wanted))} in {self.rel(parent)}",
                ", ".join(self.rel(m) for m in matches),
            )
        return matches[0] if matches else None


def _visible(name: str) -> bool:
    # Hidden entries are tool litter (.DS_Store, macOS "._x.jpg" resource forks, .cache/), never samples.
    return not name.startswith(".")


def _media_kind(name: str) -> str | None:
    return MEDIA_SUFFIXES.get(os.path.splitext(name)[1].lower())


def _media_files(directory: Path, *, recursive: bool) -> list[Path]:
    """The visible media files in ``directory`` (and below, when ``recursive``), sorted."""
    found: list[Path] = []
    pending = [directory]
    seen: set[tuple[int, int]] = set()
    while pending:
        current = pending.pop()
        status = current.stat()
        # Symlinked folders are followed (datasets are often assembled from links), but each folder
        # is read once, so a link back up the tree cannot loop or count files twice.
        if (status.st_dev, status.st_ino) in seen:
            continue
        seen.add((status.st_dev, status.st_ino))
        with os.scandir(current) as entries:
            for entry in entries:
                if not _visible(entry.name):
                    continue
                if entry.is_dir():
                    if recursive:
                        pending.append(Path(entry.path))
                elif entry.is_file() and _media_kind(entry.name):
                    found.append(Path(entry.path))
    return sorted(found)


def _item(path: Path, label: int, split: str, group: str) -> Item:
    kind = _media_kind(path.name)
    assert kind is not None, path  # callers only pass files whose suffix was checked
    return Item(path=path, label=label, split=split, group=group, media=kind)


def _require_both_classes_in_train(tree: _Tree, items: Sequence[Item]) -> None:
    counts = summarize([item for item in items if item.split == "train"]).get("train", {"real": 0, "fake": 0})
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        raise tree.error(
            "real and fake items in the train split",
            f"no {' and no '.join(missing)} item in train ({counts['real']} real, {counts['fake']} fake)",
        )


def _split_off_val(items: list[Item], val_ratio: float, seed: int) -> list[Item]:
    """``items`` with a seeded share of the train groups moved to val (see :func:`load_dataset`)."""
    labels: dict[str, set[int]] = {}
    for item in items:
        if item.split == "train":
            labels.setdefault(item.group, set()).add(item.label)
    # Stratified by label set: a plain per-label split would tear apart a group holding both
    # classes (a Celeb-DF identity), and an unstratified one could leave a class out of val.
    strata: dict[tuple[int, ...], list[str]] = {}
    for group, group_labels in labels.items():
        strata.setdefault(tuple(sorted(group_labels)), []).append(group)
    to_val: set[str] = set()
    for key in sorted(strata):
        groups = sorted(strata[key])
        # A fresh generator per stratum: one class's split does not move when the other class grows.
        random.Random(seed).shuffle(groups)
        to_val.update(groups[: _val_count(len(groups), val_ratio)])
    return [replace(item, split="val") if item.split == "train" and item.group in to_val else item for item in items]


def _val_count(n_groups: int, val_ratio: float) -> int:
    if val_ratio == 0 or n_groups < 2:
        return 0
    return min(n_groups - 1, max(1, round(val_ratio * n_groups)))


# --- folder ---------------------------------------------------------------------------------------

_FOLDER_SPLITS: Mapping[str, tuple[str, ...]] = {
    "train": ("train",),
    "val": ("val", "valid", "validation"),
    "test": ("test",),
}
_FOLDER_CLASSES: Mapping[int, tuple[str, ...]] = {REAL: ("real",), FAKE: ("fake",)}
_FOLDER_EXPECTED = (
    "DIR/real and DIR/fake, or DIR/train/{real,fake} (with optional DIR/val/{real,fake} and DIR/test/{real,fake})"
)


def _load_folder(tree: _Tree, val_ratio: float, seed: int) -> list[Item]:
    split_dirs = {split: tree.child_dir(tree.root, names) for split, names in _FOLDER_SPLITS.items()}
    class_dirs = {label: tree.child_dir(tree.root, names) for label, names in _FOLDER_CLASSES.items()}
    has_splits = any(split_dirs.values())
    if has_splits and any(class_dirs.values()):
        # Both shapes at once: one of them would be silently ignored.
        raise tree.error(f"{_FOLDER_EXPECTED}, not both", tree.entries(tree.root))
    if not has_splits:
        if not any(class_dirs.values()):
            raise tree.error(_FOLDER_EXPECTED, tree.entries(tree.root))
        return _split_off_val(_folder_items(tree, class_dirs, "train"), val_ratio, seed)
    if split_dirs["train"] is None:
        raise tree.error("DIR/train/{real,fake} beside DIR/val and DIR/test", tree.entries(tree.root))
    items: list[Item] = []
    for split, split_dir in split_dirs.items():
        if split_dir is None:
            continue
        labelled = {label: tree.child_dir(split_dir, names) for label, names in _FOLDER_CLASSES.items()}
        if not any(labelled.values()):
            raise tree.error(f"{tree.rel(split_dir)}/real and/or {tree.rel(split_dir)}/fake", tree.entries(split_dir))
        items += _folder_items(tree, labelled, split)
    return items if split_dirs["val"] else _split_off_val(items, val_ratio, seed)


def _folder_items(tree: _Tree, class_dirs: Mapping[int, Path | None], split: str) -> list[Item]:
    items = []
    for label, directory in class_dirs.items():
        if directory is None:
            continue
        for path in _media_files(directory, recursive=True):
            group = path.relative_to(tree.root).with_suffix("").as_posix()
            items.append(_item(path, label, split, group))
    return items


# --- FaceForensics++ ------------------------------------------------------------------------------

_FF_DEFAULT_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
_FF_METHODS = (*_FF_DEFAULT_METHODS, "DeepFakeDetection")
_FF_COMPRESSIONS = {"raw": "raw", "c0": "raw", "c23": "c23", "c40": "c40"}


def _load_faceforensics(tree: _Tree, compression: str, methods: Sequence[str] | None) -> list[Item]:
    quality = _FF_COMPRESSIONS.get(str(compression).lower())
    if quality is None:
        raise tree.error("compression raw (alias c0), c23 or c40", repr(compression))
    real_rel = f"original_sequences/youtube/{quality}/videos"
    real_dir = tree.root / real_rel
    if not real_dir.is_dir():
        raise tree.error(f"DIR/{real_rel}", tree.missing_dir(real_rel))
    method_dirs = _ff_method_dirs(tree, quality, methods)
    reals, pairs = _ff_splits(tree)

    items = []
    for path in _media_files(real_dir, recursive=False):
        if path.stem in reals:
            items.append(_item(path, REAL, *reals[path.stem]))
    for method, directory in method_dirs.items():
        videos = _media_files(directory, recursive=False)
        before = len(items)
        for path in videos:
            # <target>_<source>: the target's video with the source's face (or expressions).
            ids = path.stem.split("_")
            if len(ids) == 2 and (key := _ff_pair(*ids)) in pairs:
                items.append(_item(path, FAKE, *pairs[key]))
        if len(items) == before:
            # Unlike a single missing video, a whole method contributing nothing is a wrong tree.
            note = " (its sources are original_sequences/actors, outside the pair splits)"
            raise tree.error(
                f"videos named <target>_<source>.mp4 for pairs of the split files in {tree.rel(directory)}",
                f"none among its {len(videos)} videos" + (note if method == "DeepFakeDetection" else ""),
            )
    return items


def _ff_method_dirs(tree: _Tree, quality: str, methods: Sequence[str] | None) -> dict[str, Path]:
    def method_dir(method: str) -> Path:
        return tree.root / "manipulated_sequences" / method / quality / "videos"

    if methods is None:
        # Only what was downloaded at this compression: the download script fetches methods one by one.
        found = {method: method_dir(method) for method in _FF_DEFAULT_METHODS if method_dir(method).is_dir()}
        if not found:
            raise tree.error(
                f"DIR/manipulated_sequences/<method>/{quality}/videos for one of {', '.join(_FF_DEFAULT_METHODS)}",
                tree.missing_dir("manipulated_sequences")
                if not (tree.root / "manipulated_sequences").is_dir()
                else tree.entries(tree.root / "manipulated_sequences"),
            )
        return found
    if isinstance(methods, str):
        methods = [methods]  # a lone name would otherwise be read letter by letter
    canonical = {method.lower(): method for method in _FF_METHODS}
    selected: dict[str, Path] = {}
    for name in methods:
        method = canonical.get(name.lower())
        if method is None:
            raise tree.error(f"methods among {', '.join(_FF_METHODS)}", repr(name))
        if not method_dir(method).is_dir():
            relative = f"manipulated_sequences/{method}/{quality}/videos"
            raise tree.error(f"DIR/{relative} for method {method}", tree.missing_dir(relative))
        selected[method] = method_dir(method)
    if not selected:
        raise tree.error("at least one method", "an empty methods list")
    return selected


def _ff_pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if (len(a), a) <= (len(b), b) else (b, a)


def _ff_splits(tree: _Tree) -> tuple[dict[str, tuple[str, str]], dict[tuple[str, str], tuple[str, str]]]:
    """Video id -> (split, group) and sorted pair -> (split, group), from the official split files."""
    places = (tree.root / "splits", tree.root)
    files = {
        split: next((d / f"{split}.json" for d in places if (d / f"{split}.json").is_file()), None) for split in SPLITS
    }
    missing = [f"{split}.json" for split, path in files.items() if path is None]
    if missing:
        raise tree.error(
            "train.json, val.json and test.json (FaceForensics++'s dataset/splits) in DIR/splits or DIR",
            f"no {', '.join(missing)} in either",
        )
    reals: dict[str, tuple[str, str]] = {}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    where: dict[str, str] = {}
    for split, path in files.items():
        assert path is not None
        for index, (a, b) in enumerate(_ff_read_pairs(tree, path)):
            key = _ff_pair(a, b)
            group = "_".join(key)
            for video in (a, b):
                if video in where:
                    # One id in two pairs would make its group (and maybe split) ambiguous.
                    raise tree.error(
                        "every video id in one pair of one split file",
                        f"{video!r} in {where[video]} and in {tree.rel(path)} (pair {index})",
                    )
                where[video] = f"{tree.rel(path)} (pair {index})"
                reals[video] = (split, group)
            pairs[key] = (split, group)
    return reals, pairs


def _ff_read_pairs(tree: _Tree, path: Path) -> list[tuple[str, str]]:
    expected = f'{tree.rel(path)} as a JSON list of ["id", "id"] pairs'
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise tree.error(expected, f"unreadable: {error}") from error
    if not isinstance(data, list):
        raise tree.error(expected, f"a JSON {type(data).__name__}")
    for index, pair in enumerate(data):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) and v and "_" not in v for v in pair)
        ):
            raise tree.error(expected, f"pair {index} is {json.dumps(pair)}")
        if pair[0] == pair[1]:
            raise tree.error(expected, f"pair {index} pairs {pair[0]!r} with itself")
    return [(a, b) for a, b in data]


# --- Celeb-DF v2 ----------------------------------------------------------------------------------

_CELEB_FOLDERS: Mapping[str, int] = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
_CELEB_LIST = "List_of_testing_videos.txt"
# Celeb-DF's list labels 1 = real and 0 = fake, the opposite of REAL/FAKE here.
_CELEB_LIST_LABELS: Mapping[str, int] = {"1": REAL, "0": FAKE}
_CELEB_REAL_NAME = re.compile(r"(id\d+)_\d+")
_CELEB_FAKE_NAME = re.compile(r"(id\d+)_id\d+_\d+")


def _load_celebdf(tree: _Tree, val_ratio: float, seed: int) -> list[Item]:
    missing = [f"{name}/" for name in _CELEB_FOLDERS if not (tree.root / name).is_dir()]
    if not (tree.root / _CELEB_LIST).is_file():
        missing.append(_CELEB_LIST)
    if missing:
        expected = f"DIR/{', DIR/'.join(_CELEB_FOLDERS)} and DIR/{_CELEB_LIST}"
        raise tree.error(expected, f"no {', '.join(missing)} ({tree.entries(tree.root)})")

    test = _celeb_test_list(tree)
    items = [_item(tree.root / rel, label, "test", PurePosixPath(rel).stem) for rel, label in test.items()]
    for folder, label in _CELEB_FOLDERS.items():
        for path in _media_files(tree.root / folder, recursive=False):
            if f"{folder}/{path.name}" not in test:
                items.append(_item(path, label, "train", _celeb_group(folder, path.stem)))
    return _split_off_val(items, val_ratio, seed)


def _celeb_group(folder: str, stem: str) -> str:
    pattern = {"Celeb-real": _CELEB_REAL_NAME, "Celeb-synthesis": _CELEB_FAKE_NAME}.get(folder)
    match = pattern.fullmatch(stem) if pattern else None
    # Names outside the convention (and YouTube-real, which has no identities) stand alone.
    return match.group(1) if match else stem


def _celeb_test_list(tree: _Tree) -> dict[str, int]:
    """Relative path -> label of every video in the official test list, checked against its folder."""
    list_file = tree.root / _CELEB_LIST
    where = tree.rel(list_file)
    test: dict[str, int] = {}
    for number, line in enumerate(list_file.read_text(encoding="utf-8-sig").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        rel = fields[-1].replace("\\", "/")
        folder = rel.split("/", 1)[0]
        if (
            len(fields) != 2
            or fields[0] not in _CELEB_LIST_LABELS
            or folder not in _CELEB_FOLDERS
            or rel.count("/") != 1
            or not _media_kind(rel)
        ):
            raise tree.error(
                f"lines '<1 real|0 fake> <{'|'.join(_CELEB_FOLDERS)}>/<name>.mp4' in {where}",
                f"line {number}: {line.strip()!r}",
            )
        label = _CELEB_LIST_LABELS[fields[0]]
        if label != _CELEB_FOLDERS[folder]:
            raise tree.error(
                f"labels that agree with the folders in {where} (1 = real, 0 = fake)",
                f"line {number}: {line.strip()!r} labels a {_CLASS_NAMES[_CELEB_FOLDERS[folder]]} folder's video"
                f" {_CLASS_NAMES[label]}",
            )
        test[rel] = label
    absent = [rel for rel in test if not (tree.root / rel).is_file()]
    if absent:
        raise tree.error(
            f"every video listed in {where}",
            f"no DIR/{absent[0]} ({len(absent)} of the {len(test)} listed missing)",
        )
    return test


# --- ASVspoof 2019 LA -----------------------------------------------------------------------------

_ASV_PROTOCOL_DIR = "ASVspoof2019_LA_cm_protocols"
# (split, protocol file, audio folder); only train is required: eval is often not downloaded.
_ASV_PARTS = (
    ("train", "ASVspoof2019.LA.cm.train.trn.txt", "ASVspoof2019_LA_train"),
    ("val", "ASVspoof2019.LA.cm.dev.trl.txt", "ASVspoof2019_LA_dev"),
    ("test", "ASVspoof2019.LA.cm.eval.trl.txt", "ASVspoof2019_LA_eval"),
)
_ASV_KEYS: Mapping[str, int] = {"bonafide": REAL, "spoof": FAKE}
_ASV_FILE_ID = re.compile(r"[A-Za-z0-9_-]+")


def _load_asvspoof2019(tree: _Tree) -> list[Item]:
    # The archive unpacks to LA/; people point at either LA/ or the folder holding it.
    if (tree.root / _ASV_PROTOCOL_DIR).is_dir():
        la = tree.root
    elif (tree.root / "LA" / _ASV_PROTOCOL_DIR).is_dir():
        la = tree.root / "LA"
    else:
        raise tree.error(
            f"DIR/{_ASV_PROTOCOL_DIR} (DIR being the LA folder) or DIR/LA/{_ASV_PROTOCOL_DIR}",
            tree.entries(tree.root),
        )
    items: list[Item] = []
    for split, protocol_name, audio_name in _ASV_PARTS:
        protocol = la / _ASV_PROTOCOL_DIR / protocol_name
        if not protocol.is_file():
            if split == "train":
                raise tree.error(f"{tree.rel(protocol)}", tree.entries(protocol.parent))
            continue
        items += _asv_protocol_items(tree, protocol, la / audio_name / "flac", split)
    return items


def _asv_protocol_items(tree: _Tree, protocol: Path, flac_dir: Path, split: str) -> list[Item]:
    rows: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(protocol.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5 or fields[4] not in _ASV_KEYS or not _ASV_FILE_ID.fullmatch(fields[1]):
            raise tree.error(
                f"lines 'SPEAKER FILE_ID - SYSTEM|- bonafide|spoof' in {tree.rel(protocol)}",
                f"line {number}: {line.strip()!r}",
            )
        rows.setdefault(fields[1], (fields[0], _ASV_KEYS[fields[4]]))
    try:
        # One listing instead of a stat per file: the train protocol alone lists 25,380 files.
        present = set(os.listdir(flac_dir))
    except OSError:
        present = set()
    absent = [file_id for file_id in rows if f"{file_id}.flac" not in present]
    if absent:
        raise tree.error(
            f"every file listed in {tree.rel(protocol)}",
            f"no {tree.rel(flac_dir / f'{absent[0]}.flac')} ({len(absent)} of the {len(rows)} listed missing)",
        )
    return [_item(flac_dir / f"{file_id}.flac", label, split, speaker) for file_id, (speaker, label) in rows.items()]
