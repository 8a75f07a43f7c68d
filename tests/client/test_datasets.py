"""Dataset layouts read into labelled, split items (miniature trees with the datasets' real file names)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from deepfake_client.datasets import (
    FAKE,
    LAYOUTS,
    MEDIA_SUFFIXES,
    REAL,
    SPLITS,
    DatasetError,
    Item,
    load_dataset,
    summarize,
)

Row = tuple[str, int, str, str, str]


def touch(root: Path, *paths: str) -> None:
    """Few-byte files at ``paths`` under ``root`` (the module never opens media)."""
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x")


def rows(items: Sequence[Item], root: Path) -> list[Row]:
    """Items as (path relative to root, label, split, group, media), in the order returned."""
    base = root.resolve()
    for item in items:
        assert item.path.is_absolute()
    return [(item.path.relative_to(base).as_posix(), item.label, item.split, item.group, item.media) for item in items]


def groups_by_split(items: Sequence[Item]) -> dict[str, set[str]]:
    """Split -> the groups in it."""
    found: dict[str, set[str]] = {}
    for item in items:
        found.setdefault(item.split, set()).add(item.group)
    return found


def assert_groups_never_straddle(items: Sequence[Item]) -> None:
    """No group in two splits."""
    split_of: dict[str, str] = {}
    for item in items:
        assert split_of.setdefault(item.group, item.split) == item.split, item.group


def assert_sorted(items: Sequence[Item]) -> None:
    """Returned in (split order, path) order."""
    keys = [(SPLITS.index(item.split), item.path) for item in items]
    assert keys == sorted(keys)


# --- the public constants ---------------------------------------------------------------------------


def test_the_public_constants() -> None:
    assert (REAL, FAKE) == (0, 1)
    assert SPLITS == ("train", "val", "test")
    assert LAYOUTS == ("folder", "faceforensics", "celebdf", "asvspoof2019")
    assert {
        kind: sorted(s for s, k in MEDIA_SUFFIXES.items() if k == kind) for kind in ("image", "audio", "video")
    } == {
        "image": [".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"],
        "audio": [".flac", ".mp3", ".ogg", ".opus", ".wav"],
        "video": [".avi", ".mkv", ".mov", ".mp4", ".webm"],
    }


def test_an_item_refuses_an_unknown_label_or_split(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="label must be REAL"):
        Item(tmp_path / "a.jpg", 2, "train", "a", "image")
    with pytest.raises(ValueError, match="split must be one of train, val, test"):
        Item(tmp_path / "a.jpg", REAL, "dev", "a", "image")


# --- common refusals --------------------------------------------------------------------------------


def test_an_unknown_layout_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"expected a layout among folder, faceforensics, celebdf, asvspoof2019; "):
        load_dataset(tmp_path, "imagenet")


def test_a_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"folder dataset at .*nowhere: expected a dataset folder; found nothing"):
        load_dataset(tmp_path / "nowhere")
    touch(tmp_path, "file.jpg")
    with pytest.raises(DatasetError, match="found a file, not a folder"):
        load_dataset(tmp_path / "file.jpg", "celebdf")


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_a_val_ratio_outside_0_1_is_refused(tmp_path: Path, ratio: float) -> None:
    touch(tmp_path, "real/a.jpg", "fake/b.jpg")
    with pytest.raises(DatasetError, match=r"expected val_ratio in \[0, 1\); found"):
        load_dataset(tmp_path, val_ratio=ratio)


def test_the_layout_name_is_case_insensitive(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.jpg", "fake/b.jpg")
    assert load_dataset(tmp_path, "Folder", val_ratio=0) == load_dataset(tmp_path, val_ratio=0)


# --- folder -----------------------------------------------------------------------------------------


def test_folder_real_and_fake_recursive_by_suffix_skipping_hidden_and_other_files(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "real/a.jpg",
        "real/sub/b.PNG",
        "real/notes.txt",
        "real/.hidden.jpg",
        "real/._a.jpg",
        "real/.cache/c.jpg",
        "fake/x.mp4",
        "fake/y.wav",
        "fake/deep/er/z.WebP",
        "README.md",
    )
    items = load_dataset(tmp_path, val_ratio=0)
    assert rows(items, tmp_path) == [
        ("fake/deep/er/z.WebP", FAKE, "train", "fake/deep/er/z", "image"),
        ("fake/x.mp4", FAKE, "train", "fake/x", "video"),
        ("fake/y.wav", FAKE, "train", "fake/y", "audio"),
        ("real/a.jpg", REAL, "train", "real/a", "image"),
        ("real/sub/b.PNG", REAL, "train", "real/sub/b", "image"),
    ]
    assert summarize(items) == {"train": {"real": 2, "fake": 3}}


def test_folder_default_ratio_puts_one_group_of_each_class_in_val(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.jpg", "real/b.jpg", "fake/c.jpg", "fake/d.jpg", "fake/e.jpg")
    items = load_dataset(tmp_path)  # 0.2 of 2 or 3 groups rounds to 0: at least one each
    assert rows(items, tmp_path) == [
        ("fake/d.jpg", FAKE, "train", "fake/d", "image"),
        ("fake/e.jpg", FAKE, "train", "fake/e", "image"),
        ("real/b.jpg", REAL, "train", "real/b", "image"),
        ("fake/c.jpg", FAKE, "val", "fake/c", "image"),
        ("real/a.jpg", REAL, "val", "real/a", "image"),
    ]
    assert summarize(items) == {"train": {"real": 1, "fake": 2}, "val": {"real": 1, "fake": 1}}


def test_a_lone_group_of_a_class_stays_in_train(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.jpg", "fake/b.jpg", "fake/c.jpg")
    assert summarize(load_dataset(tmp_path, val_ratio=0.5)) == {
        "train": {"real": 1, "fake": 1},
        "val": {"real": 0, "fake": 1},
    }


def test_folder_seeded_split_is_deterministic_by_group_and_changes_with_the_seed(tmp_path: Path) -> None:
    touch(tmp_path, *(f"real/r{i}.jpg" for i in range(10)), *(f"fake/f{i}.png" for i in range(10)))
    first = load_dataset(tmp_path, seed=0)
    assert first == load_dataset(tmp_path, seed=0)
    assert groups_by_split(first)["val"] == {"real/r7", "real/r8", "fake/f7", "fake/f8"}
    # The documented recipe: the sorted groups of a class, shuffled by random.Random(seed), the first round(0.2 * 10).
    shuffled = sorted(f"real/r{i}" for i in range(10))
    random.Random(0).shuffle(shuffled)
    assert set(shuffled[:2]) == {"real/r7", "real/r8"}
    other = load_dataset(tmp_path, seed=1)
    assert groups_by_split(other)["val"] == {"real/r6", "real/r8", "fake/f6", "fake/f8"}
    assert summarize(first) == summarize(other) == {"train": {"real": 8, "fake": 8}, "val": {"real": 2, "fake": 2}}
    half = load_dataset(tmp_path, val_ratio=0.5, seed=0)
    assert summarize(half) == {"train": {"real": 5, "fake": 5}, "val": {"real": 5, "fake": 5}}
    for items in (first, other, half):
        assert_sorted(items)
        assert_groups_never_straddle(items)


def test_folder_with_train_val_test_keeps_the_given_splits(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "train/real/a.jpg",
        "train/fake/b.jpg",
        "val/real/c.jpg",
        "val/fake/d.jpg",
        "test/real/e.jpg",
        "test/fake/sub/f.mov",
        "test/labels.csv",
    )
    assert rows(load_dataset(tmp_path, seed=5), tmp_path) == [
        ("train/fake/b.jpg", FAKE, "train", "train/fake/b", "image"),
        ("train/real/a.jpg", REAL, "train", "train/real/a", "image"),
        ("val/fake/d.jpg", FAKE, "val", "val/fake/d", "image"),
        ("val/real/c.jpg", REAL, "val", "val/real/c", "image"),
        ("test/fake/sub/f.mov", FAKE, "test", "test/fake/sub/f", "video"),
        ("test/real/e.jpg", REAL, "test", "test/real/e", "image"),
    ]


def test_folder_names_match_in_any_case_and_validation_means_val(tmp_path: Path) -> None:
    touch(tmp_path, "Train/Real/a.jpg", "Train/Fake/b.jpg", "Validation/REAL/c.jpg", "Validation/Fake/d.jpg")
    assert rows(load_dataset(tmp_path), tmp_path) == [
        ("Train/Fake/b.jpg", FAKE, "train", "Train/Fake/b", "image"),
        ("Train/Real/a.jpg", REAL, "train", "Train/Real/a", "image"),
        ("Validation/Fake/d.jpg", FAKE, "val", "Validation/Fake/d", "image"),
        ("Validation/REAL/c.jpg", REAL, "val", "Validation/REAL/c", "image"),
    ]


def test_folder_without_val_splits_val_off_train_and_keeps_test(tmp_path: Path) -> None:
    touch(
        tmp_path,
        *(f"train/real/r{i}.jpg" for i in range(5)),
        *(f"train/fake/f{i}.jpg" for i in range(5)),
        "test/real/t.jpg",
        "test/fake/u.jpg",
    )
    items = load_dataset(tmp_path)
    assert summarize(items) == {
        "train": {"real": 4, "fake": 4},
        "val": {"real": 1, "fake": 1},
        "test": {"real": 1, "fake": 1},
    }
    assert groups_by_split(items)["val"] == {"train/real/r2", "train/fake/f2"}
    assert groups_by_split(items)["test"] == {"test/real/t", "test/fake/u"}
    assert_groups_never_straddle(items)


def test_folder_refuses_a_tree_with_neither_shape_listing_what_is_there(tmp_path: Path) -> None:
    touch(tmp_path, "images/a.jpg", "labels.csv", ".DS_Store")
    with pytest.raises(
        DatasetError,
        match=r"folder dataset at .*: expected DIR/real and DIR/fake, or DIR/train/\{real,fake\} .*; "
        r"found DIR has images/, labels\.csv$",
    ):
        load_dataset(tmp_path)


def test_folder_refuses_an_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"found DIR empty$"):
        load_dataset(tmp_path)


def test_folder_refuses_val_or_test_without_train(tmp_path: Path) -> None:
    touch(tmp_path, "val/real/a.jpg", "test/fake/b.jpg")
    with pytest.raises(
        DatasetError, match=r"expected DIR/train/\{real,fake\} beside DIR/val and DIR/test; found DIR has"
    ):
        load_dataset(tmp_path)


def test_folder_refuses_a_split_folder_without_real_or_fake(tmp_path: Path) -> None:
    touch(tmp_path, "train/real/a.jpg", "train/fake/b.jpg", "test/a.jpg")
    with pytest.raises(DatasetError, match=r"expected DIR/test/real and/or DIR/test/fake; found DIR/test has a\.jpg"):
        load_dataset(tmp_path)


def test_folder_refuses_both_shapes_at_once(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.jpg", "fake/b.jpg", "train/real/c.jpg", "train/fake/d.jpg")
    with pytest.raises(DatasetError, match=r", not both; found DIR has fake/, real/, train/"):
        load_dataset(tmp_path)


def test_folder_refuses_two_spellings_of_one_folder(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.jpg", "fake/b.jpg")
    if (tmp_path / "REAL").exists():
        pytest.skip("case-insensitive file system")
    touch(tmp_path, "REAL/c.jpg")
    with pytest.raises(DatasetError, match=r"expected one folder among real in DIR; found DIR/REAL, DIR/real"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        (["real/a.jpg", "fake/notes.txt"], "no fake item in train"),
        (["fake/a.jpg"], "no real item in train"),
        (["real/a.txt", "fake/b.txt"], "no real and no fake item in train"),
        (["train/real/a.jpg", "train/fake/b.jpg"], None),
        (["train/real/a.jpg", "val/fake/b.jpg"], "no fake item in train"),
    ],
)
def test_a_train_split_without_both_classes_is_refused_naming_the_missing_one(
    tmp_path: Path, files: list[str], missing: str | None
) -> None:
    touch(tmp_path, *files)
    if missing is None:
        assert len(load_dataset(tmp_path)) == 2
        return
    with pytest.raises(DatasetError, match=f"expected real and fake items in the train split; found {missing}"):
        load_dataset(tmp_path)


def test_folder_follows_symlinked_folders_once(tmp_path: Path) -> None:
    touch(tmp_path, "data/real/a.jpg", "data/fake/b.jpg", "elsewhere/c.jpg")
    (tmp_path / "data/real/loop").symlink_to(tmp_path / "data/real")
    (tmp_path / "data/fake/more").symlink_to(tmp_path / "elsewhere")
    assert rows(load_dataset(tmp_path / "data", val_ratio=0), tmp_path / "data") == [
        ("fake/b.jpg", FAKE, "train", "fake/b", "image"),
        ("fake/more/c.jpg", FAKE, "train", "fake/more/c", "image"),
        ("real/a.jpg", REAL, "train", "real/a", "image"),
    ]


# --- FaceForensics++ --------------------------------------------------------------------------------

FF_REAL = "original_sequences/youtube/c23/videos"


def faceforensics(root: Path, *, splits_dir: str = "splits") -> Path:
    """A FaceForensics++ tree: 7 real videos, Deepfakes and Face2Face fakes, DeepFakeDetection beside."""
    touch(root, *(f"{FF_REAL}/{video}.mp4" for video in ("000", "003", "054", "071", "953", "974", "999")))
    deepfakes = ("000_003", "003_000", "071_054", "054_071", "953_974", "974_953", "999_000")
    touch(root, *(f"manipulated_sequences/Deepfakes/c23/videos/{video}.mp4" for video in deepfakes))
    touch(root, *(f"manipulated_sequences/Face2Face/c23/videos/{video}.mp4" for video in ("071_054", "003_000")))
    touch(root, "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__exit_phone_room__YVGY8LOK.mp4")
    touch(root, "original_sequences/youtube/c40/videos/071.mp4", "manipulated_sequences/Deepfakes/c23/masks/x.mp4")
    (root / splits_dir).mkdir(exist_ok=True)
    for split, pairs in {"train": [["071", "054"]], "val": [["953", "974"]], "test": [["003", "000"]]}.items():
        (root / splits_dir / f"{split}.json").write_text(json.dumps(pairs))
    return root


FF_ITEMS: list[Row] = [
    ("manipulated_sequences/Deepfakes/c23/videos/054_071.mp4", FAKE, "train", "054_071", "video"),
    ("manipulated_sequences/Deepfakes/c23/videos/071_054.mp4", FAKE, "train", "054_071", "video"),
    ("manipulated_sequences/Face2Face/c23/videos/071_054.mp4", FAKE, "train", "054_071", "video"),
    (f"{FF_REAL}/054.mp4", REAL, "train", "054_071", "video"),
    (f"{FF_REAL}/071.mp4", REAL, "train", "054_071", "video"),
    ("manipulated_sequences/Deepfakes/c23/videos/953_974.mp4", FAKE, "val", "953_974", "video"),
    ("manipulated_sequences/Deepfakes/c23/videos/974_953.mp4", FAKE, "val", "953_974", "video"),
    (f"{FF_REAL}/953.mp4", REAL, "val", "953_974", "video"),
    (f"{FF_REAL}/974.mp4", REAL, "val", "953_974", "video"),
    ("manipulated_sequences/Deepfakes/c23/videos/000_003.mp4", FAKE, "test", "000_003", "video"),
    ("manipulated_sequences/Deepfakes/c23/videos/003_000.mp4", FAKE, "test", "000_003", "video"),
    ("manipulated_sequences/Face2Face/c23/videos/003_000.mp4", FAKE, "test", "000_003", "video"),
    (f"{FF_REAL}/000.mp4", REAL, "test", "000_003", "video"),
    (f"{FF_REAL}/003.mp4", REAL, "test", "000_003", "video"),
]


def test_faceforensics_official_pair_splits_with_every_default_method_present(tmp_path: Path) -> None:
    items = load_dataset(faceforensics(tmp_path), "faceforensics", val_ratio=0.5, seed=3)  # ratio and seed unused
    assert rows(items, tmp_path) == FF_ITEMS
    assert_groups_never_straddle(items)
    assert summarize(items) == {
        "train": {"real": 2, "fake": 3},
        "val": {"real": 2, "fake": 2},
        "test": {"real": 2, "fake": 3},
    }


def test_faceforensics_split_files_may_sit_in_the_root(tmp_path: Path) -> None:
    items = load_dataset(faceforensics(tmp_path, splits_dir="."), "faceforensics")
    assert rows(items, tmp_path) == FF_ITEMS


def test_faceforensics_methods_are_chosen_case_insensitively(tmp_path: Path) -> None:
    items = load_dataset(faceforensics(tmp_path), "faceforensics", methods=["face2face"])
    assert [row for row in rows(items, tmp_path) if row[1] == FAKE] == [
        ("manipulated_sequences/Face2Face/c23/videos/071_054.mp4", FAKE, "train", "054_071", "video"),
        ("manipulated_sequences/Face2Face/c23/videos/003_000.mp4", FAKE, "test", "000_003", "video"),
    ]
    assert summarize(items) == {
        "train": {"real": 2, "fake": 1},
        "val": {"real": 2, "fake": 0},
        "test": {"real": 2, "fake": 1},
    }


def test_faceforensics_c0_is_raw(tmp_path: Path) -> None:
    faceforensics(tmp_path)
    touch(tmp_path, "original_sequences/youtube/raw/videos/071.mp4", "original_sequences/youtube/raw/videos/054.mp4")
    touch(tmp_path, "manipulated_sequences/FaceSwap/raw/videos/054_071.mp4")
    assert rows(load_dataset(tmp_path, "faceforensics", compression="c0"), tmp_path) == [
        ("manipulated_sequences/FaceSwap/raw/videos/054_071.mp4", FAKE, "train", "054_071", "video"),
        ("original_sequences/youtube/raw/videos/054.mp4", REAL, "train", "054_071", "video"),
        ("original_sequences/youtube/raw/videos/071.mp4", REAL, "train", "054_071", "video"),
    ]


def test_faceforensics_refuses_an_unknown_compression(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"expected compression raw \(alias c0\), c23 or c40; found 'c99'"):
        load_dataset(faceforensics(tmp_path), "faceforensics", compression="c99")


def test_faceforensics_refuses_missing_real_videos(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError,
        match=r"faceforensics dataset at .*: expected DIR/original_sequences/youtube/raw/videos; "
        r"found no raw/ \(DIR/original_sequences/youtube has c23/, c40/\)",
    ):
        load_dataset(faceforensics(tmp_path), "faceforensics", compression="raw")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"found no original_sequences/ \(DIR empty\)$"):
        load_dataset(tmp_path / "empty", "faceforensics")


def test_faceforensics_refuses_a_compression_without_any_default_method(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError,
        match=r"expected DIR/manipulated_sequences/<method>/c40/videos for one of Deepfakes, Face2Face, FaceSwap, "
        r"NeuralTextures, FaceShifter; found DIR/manipulated_sequences has DeepFakeDetection/, Deepfakes/, Face2Face/",
    ):
        load_dataset(faceforensics(tmp_path), "faceforensics", compression="c40")


def test_faceforensics_refuses_an_unknown_method_listing_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError,
        match=r"expected methods among Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter, "
        r"DeepFakeDetection; found 'DeepFake'",
    ):
        load_dataset(faceforensics(tmp_path), "faceforensics", methods=["Deepfakes", "DeepFake"])


def test_faceforensics_refuses_a_selected_method_missing_on_disk(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError,
        match=r"expected DIR/manipulated_sequences/FaceSwap/c23/videos for method FaceSwap; "
        r"found no FaceSwap/ \(DIR/manipulated_sequences has DeepFakeDetection/, Deepfakes/, Face2Face/\)",
    ):
        load_dataset(faceforensics(tmp_path), "faceforensics", methods=["FaceSwap"])


def test_faceforensics_refuses_an_empty_method_list(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="expected at least one method; found an empty methods list"):
        load_dataset(faceforensics(tmp_path), "faceforensics", methods=[])


def test_faceforensics_refuses_deepfakedetection_whose_videos_no_split_names(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError,
        match=r"expected videos named <target>_<source>\.mp4 for pairs of the split files in "
        r"DIR/manipulated_sequences/DeepFakeDetection/c23/videos; found none among its 1 videos "
        r"\(its sources are original_sequences/actors",
    ):
        load_dataset(faceforensics(tmp_path), "faceforensics", methods=["Deepfakes", "DeepFakeDetection"])


def test_faceforensics_refuses_missing_split_files_saying_where_it_looked(tmp_path: Path) -> None:
    faceforensics(tmp_path)
    (tmp_path / "splits/val.json").unlink()
    (tmp_path / "splits/test.json").unlink()
    with pytest.raises(
        DatasetError,
        match=r"expected train\.json, val\.json and test\.json .* in DIR/splits or DIR; found no val\.json, test\.json in "
        r"either",
    ):
        load_dataset(tmp_path, "faceforensics")


@pytest.mark.parametrize(
    ("content", "found"),
    [
        ('[["071", ', r"unreadable: Expecting value: line 1 column 10"),
        ('{"071": "054"}', "a JSON dict"),
        ('[["071", "054", "999"]]', r'pair 0 is \["071", "054", "999"\]'),
        ('[["071", "054"], ["953", 974]]', r'pair 1 is \["953", 974\]'),
        ('[["071", "071"]]', "pair 0 pairs '071' with itself"),
    ],
)
def test_faceforensics_refuses_a_malformed_split_file(tmp_path: Path, content: str, found: str) -> None:
    faceforensics(tmp_path)
    (tmp_path / "splits/train.json").write_text(content)
    with pytest.raises(
        DatasetError, match=rf'expected DIR/splits/train\.json as a JSON list of \["id", "id"\] pairs; found {found}'
    ):
        load_dataset(tmp_path, "faceforensics")


def test_faceforensics_refuses_a_video_id_in_two_splits(tmp_path: Path) -> None:
    faceforensics(tmp_path)
    (tmp_path / "splits/test.json").write_text('[["003", "000"], ["974", "999"]]')
    with pytest.raises(
        DatasetError,
        match=r"expected every video id in one pair of one split file; "
        r"found '974' in DIR/splits/val\.json \(pair 0\) and in DIR/splits/test\.json \(pair 1\)",
    ):
        load_dataset(tmp_path, "faceforensics")


# --- Celeb-DF v2 ------------------------------------------------------------------------------------


def celebdf(root: Path, test_list: str | None = None) -> Path:
    """A Celeb-DF v2 tree: 4 identities, 4 YouTube videos, 3 of them in the test list."""
    touch(
        root, *(f"Celeb-real/{v}.mp4" for v in ("id0_0000", "id0_0001", "id1_0000", "id1_0001", "id2_0000", "id3_0000"))
    )
    fakes = ("id0_id1_0000", "id0_id2_0001", "id1_id0_0000", "id1_id3_0001", "id2_id1_0000", "id3_id0_0000")
    touch(root, *(f"Celeb-synthesis/{v}.mp4" for v in fakes))
    touch(root, *(f"YouTube-real/{v}.mp4" for v in ("00000", "00001", "00002", "00170")), "YouTube-real/notes.txt")
    if test_list is None:
        test_list = "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id2_id1_0000.mp4\n\n1 Celeb-real/id2_0000.mp4\n"
    (root / "List_of_testing_videos.txt").write_text(test_list)
    return root


def test_celebdf_test_list_and_a_seeded_split_by_target_identity(tmp_path: Path) -> None:
    items = load_dataset(celebdf(tmp_path), "celebdf", seed=0)
    assert rows(items, tmp_path) == [
        ("Celeb-real/id1_0000.mp4", REAL, "train", "id1", "video"),
        ("Celeb-real/id1_0001.mp4", REAL, "train", "id1", "video"),
        ("Celeb-real/id3_0000.mp4", REAL, "train", "id3", "video"),
        ("Celeb-synthesis/id1_id0_0000.mp4", FAKE, "train", "id1", "video"),
        ("Celeb-synthesis/id1_id3_0001.mp4", FAKE, "train", "id1", "video"),
        ("Celeb-synthesis/id3_id0_0000.mp4", FAKE, "train", "id3", "video"),
        ("YouTube-real/00001.mp4", REAL, "train", "00001", "video"),
        ("YouTube-real/00002.mp4", REAL, "train", "00002", "video"),
        # Identity id0: its real videos and the fakes made from them, together.
        ("Celeb-real/id0_0000.mp4", REAL, "val", "id0", "video"),
        ("Celeb-real/id0_0001.mp4", REAL, "val", "id0", "video"),
        ("Celeb-synthesis/id0_id1_0000.mp4", FAKE, "val", "id0", "video"),
        ("Celeb-synthesis/id0_id2_0001.mp4", FAKE, "val", "id0", "video"),
        ("YouTube-real/00000.mp4", REAL, "val", "00000", "video"),
        ("Celeb-real/id2_0000.mp4", REAL, "test", "id2_0000", "video"),
        ("Celeb-synthesis/id2_id1_0000.mp4", FAKE, "test", "id2_id1_0000", "video"),
        ("YouTube-real/00170.mp4", REAL, "test", "00170", "video"),
    ]
    assert summarize(items) == {
        "train": {"real": 5, "fake": 3},
        "val": {"real": 3, "fake": 2},
        "test": {"real": 2, "fake": 1},
    }


def test_celebdf_split_is_deterministic_and_changes_with_the_seed(tmp_path: Path) -> None:
    celebdf(tmp_path)
    first = load_dataset(tmp_path, "celebdf", seed=0)
    assert first == load_dataset(tmp_path, "celebdf", seed=0)
    assert groups_by_split(first)["val"] == {"id0", "00000"}
    other = load_dataset(tmp_path, "celebdf", seed=1)
    assert groups_by_split(other)["val"] == {"id1", "00001"}
    assert groups_by_split(first)["test"] == groups_by_split(other)["test"] == {"id2_0000", "id2_id1_0000", "00170"}
    for items in (first, other):
        assert_sorted(items)
        assert_groups_never_straddle(items)


def test_celebdf_refuses_a_list_label_that_contradicts_the_folder(tmp_path: Path) -> None:
    # 1 is REAL in Celeb-DF's list: a fake video listed with 1 is a contradiction.
    celebdf(tmp_path, "1 YouTube-real/00170.mp4\n1 Celeb-synthesis/id2_id1_0000.mp4\n")
    with pytest.raises(
        DatasetError,
        match=r"expected labels that agree with the folders in DIR/List_of_testing_videos\.txt \(1 = real, 0 = fake\); "
        r"found line 2: '1 Celeb-synthesis/id2_id1_0000\.mp4' labels a fake folder's video real",
    ):
        load_dataset(tmp_path, "celebdf")


@pytest.mark.parametrize(
    "line", ["2 YouTube-real/00170.mp4", "YouTube-real/00170.mp4", "1 Other/00170.mp4", "1 YouTube-real/00170.txt"]
)
def test_celebdf_refuses_a_malformed_list_line(tmp_path: Path, line: str) -> None:
    celebdf(tmp_path, f"0 Celeb-synthesis/id2_id1_0000.mp4\n{line}\n")
    with pytest.raises(DatasetError, match=rf"in DIR/List_of_testing_videos\.txt; found line 2: '{line}'$"):
        load_dataset(tmp_path, "celebdf")


def test_celebdf_refuses_a_listed_video_that_does_not_exist(tmp_path: Path) -> None:
    celebdf(tmp_path, "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id9_id1_0000.mp4\n1 Celeb-real/id9_0000.mp4\n")
    with pytest.raises(
        DatasetError,
        match=r"expected every video listed in DIR/List_of_testing_videos\.txt; "
        r"found no DIR/Celeb-synthesis/id9_id1_0000\.mp4 \(2 of the 3 listed missing\)",
    ):
        load_dataset(tmp_path, "celebdf")


@pytest.mark.parametrize("missing", ["Celeb-real", "YouTube-real", "Celeb-synthesis"])
def test_celebdf_refuses_a_missing_folder(tmp_path: Path, missing: str) -> None:
    celebdf(tmp_path)
    for path in (tmp_path / missing).iterdir():
        path.unlink()
    (tmp_path / missing).rmdir()
    with pytest.raises(
        DatasetError,
        match=r"expected DIR/Celeb-real, DIR/YouTube-real, DIR/Celeb-synthesis and DIR/List_of_testing_videos\.txt; "
        rf"found no {missing}/ \(DIR has ",
    ):
        load_dataset(tmp_path, "celebdf")


def test_celebdf_refuses_a_missing_test_list(tmp_path: Path) -> None:
    celebdf(tmp_path)
    (tmp_path / "List_of_testing_videos.txt").unlink()
    with pytest.raises(
        DatasetError,
        match=r"found no List_of_testing_videos\.txt \(DIR has Celeb-real/, Celeb-synthesis/, YouTube-real/\)",
    ):
        load_dataset(tmp_path, "celebdf")


# --- ASVspoof 2019 LA -------------------------------------------------------------------------------

ASV_PROTOCOLS = "LA/ASVspoof2019_LA_cm_protocols"
ASV_TRAIN = (
    "LA_0079 LA_T_1138215 - - bonafide\n"
    "LA_0079 LA_T_1271820 - A01 spoof\n"
    "LA_0080 LA_T_1000137 - - bonafide\n"
    "LA_0080 LA_T_1004644 - A02 spoof\n"
)


def asvspoof(root: Path, *, train: str = ASV_TRAIN, with_eval: bool = False) -> Path:
    """An ASVspoof 2019 LA tree under root/LA: train and dev protocols (eval only when asked)."""
    (root / ASV_PROTOCOLS).mkdir(parents=True)
    (root / ASV_PROTOCOLS / "ASVspoof2019.LA.cm.train.trn.txt").write_text(train)
    (root / ASV_PROTOCOLS / "ASVspoof2019.LA.cm.dev.trl.txt").write_text(
        "LA_0069 LA_D_1047731 - - bonafide\nLA_0069 LA_D_1105538 - A05 spoof\n"
    )
    touch(root, *(f"LA/ASVspoof2019_LA_train/flac/{f}.flac" for f in ("LA_T_1138215", "LA_T_1271820", "LA_T_1000137")))
    touch(root, "LA/ASVspoof2019_LA_train/flac/LA_T_1004644.flac", "LA/ASVspoof2019_LA_train/flac/LA_T_9999999.flac")
    touch(root, "LA/ASVspoof2019_LA_dev/flac/LA_D_1047731.flac", "LA/ASVspoof2019_LA_dev/flac/LA_D_1105538.flac")
    if with_eval:
        (root / ASV_PROTOCOLS / "ASVspoof2019.LA.cm.eval.trl.txt").write_text("LA_0039 LA_E_2834763 - A11 spoof\n")
        touch(root, "LA/ASVspoof2019_LA_eval/flac/LA_E_2834763.flac")
    return root


ASV_ITEMS: list[Row] = [
    ("ASVspoof2019_LA_train/flac/LA_T_1000137.flac", REAL, "train", "LA_0080", "audio"),
    ("ASVspoof2019_LA_train/flac/LA_T_1004644.flac", FAKE, "train", "LA_0080", "audio"),
    ("ASVspoof2019_LA_train/flac/LA_T_1138215.flac", REAL, "train", "LA_0079", "audio"),
    ("ASVspoof2019_LA_train/flac/LA_T_1271820.flac", FAKE, "train", "LA_0079", "audio"),
    ("ASVspoof2019_LA_dev/flac/LA_D_1047731.flac", REAL, "val", "LA_0069", "audio"),
    ("ASVspoof2019_LA_dev/flac/LA_D_1105538.flac", FAKE, "val", "LA_0069", "audio"),
]


def test_asvspoof2019_protocols_give_the_splits_whether_dir_is_la_or_its_parent(tmp_path: Path) -> None:
    asvspoof(tmp_path)
    from_parent = load_dataset(tmp_path, "asvspoof2019")
    assert rows(from_parent, tmp_path / "LA") == ASV_ITEMS
    assert load_dataset(tmp_path / "LA", "asvspoof2019") == from_parent
    assert summarize(from_parent) == {"train": {"real": 2, "fake": 2}, "val": {"real": 1, "fake": 1}}
    assert_groups_never_straddle(from_parent)


def test_asvspoof2019_eval_is_the_test_split(tmp_path: Path) -> None:
    items = load_dataset(asvspoof(tmp_path, with_eval=True), "asvspoof2019")
    assert rows(items, tmp_path / "LA") == [
        *ASV_ITEMS,
        ("ASVspoof2019_LA_eval/flac/LA_E_2834763.flac", FAKE, "test", "LA_0039", "audio"),
    ]


def test_asvspoof2019_refuses_listed_files_that_do_not_exist(tmp_path: Path) -> None:
    asvspoof(tmp_path)
    (tmp_path / "LA/ASVspoof2019_LA_train/flac/LA_T_1271820.flac").unlink()
    (tmp_path / "LA/ASVspoof2019_LA_train/flac/LA_T_1004644.flac").unlink()
    with pytest.raises(
        DatasetError,
        match=r"asvspoof2019 dataset at .*: expected every file listed in "
        r"DIR/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019\.LA\.cm\.train\.trn\.txt; "
        r"found no DIR/LA/ASVspoof2019_LA_train/flac/LA_T_1271820\.flac \(2 of the 4 listed missing\)",
    ):
        load_dataset(tmp_path, "asvspoof2019")


@pytest.mark.parametrize(
    "line", ["LA_0080 LA_T_1000137 - - genuine", "LA_0080 LA_T_1000137 - bonafide", "LA_0080 ../x - - bonafide"]
)
def test_asvspoof2019_refuses_a_malformed_line_with_its_file_and_number(tmp_path: Path, line: str) -> None:
    asvspoof(tmp_path, train=ASV_TRAIN.replace("LA_0080 LA_T_1000137 - - bonafide", line))
    with pytest.raises(
        DatasetError,
        match=r"expected lines 'SPEAKER FILE_ID - SYSTEM\|- bonafide\|spoof' in "
        rf"DIR/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019\.LA\.cm\.train\.trn\.txt; found line 3: '{line}'$",
    ):
        load_dataset(tmp_path, "asvspoof2019")


def test_asvspoof2019_refuses_a_missing_train_protocol(tmp_path: Path) -> None:
    asvspoof(tmp_path)
    (tmp_path / ASV_PROTOCOLS / "ASVspoof2019.LA.cm.train.trn.txt").unlink()
    with pytest.raises(
        DatasetError,
        match=r"expected DIR/LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019\.LA\.cm\.train\.trn\.txt; "
        r"found DIR/LA/ASVspoof2019_LA_cm_protocols has ASVspoof2019\.LA\.cm\.dev\.trl\.txt$",
    ):
        load_dataset(tmp_path, "asvspoof2019")


def test_asvspoof2019_refuses_a_tree_without_the_protocols(tmp_path: Path) -> None:
    touch(tmp_path, "LA/ASVspoof2019_LA_train/flac/LA_T_1138215.flac")
    with pytest.raises(
        DatasetError,
        match=r"expected DIR/ASVspoof2019_LA_cm_protocols \(DIR being the LA folder\) or "
        r"DIR/LA/ASVspoof2019_LA_cm_protocols; found DIR has LA/$",
    ):
        load_dataset(tmp_path, "asvspoof2019")


# --- summarize --------------------------------------------------------------------------------------


def test_summarize_counts_by_split_and_class_in_split_order(tmp_path: Path) -> None:
    item = Item(tmp_path / "a.jpg", REAL, "train", "a", "image")
    items = [
        Item(tmp_path / "t.jpg", FAKE, "test", "t", "image"),
        item,
        Item(tmp_path / "b.jpg", FAKE, "train", "b", "image"),
        Item(tmp_path / "c.jpg", FAKE, "train", "c", "image"),
    ]
    summary = summarize(items)
    assert summary == {"train": {"real": 1, "fake": 2}, "test": {"real": 0, "fake": 1}}
    assert list(summary) == ["train", "test"]
    assert summarize([]) == {}
