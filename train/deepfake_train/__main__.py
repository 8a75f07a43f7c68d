"""``python -m deepfake_train {visual,forensic,audio,temporal} --data DIR --out CKPT_DIR``.

Trains one detector on a labelled dataset and writes what ``make serve
CHECKPOINTS=CKPT_DIR`` serves (see :mod:`deepfake_train.loop`). Defaults are
the specification's recipe (AdamW, lr 1e-4, weight decay 0.01, cosine
annealing, 50 epochs, batch 32, label smoothing 0.1); every value is a flag.
Several GPUs: ``torchrun --nproc_per_node N -m deepfake_train ...``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields

from deepfake_client.datasets import LAYOUTS, DatasetError
from deepfake_train.loop import DETECTORS, TrainConfig, TrainError, train

_HELP = {
    "layout": f"dataset layout: {', '.join(LAYOUTS)}",
    "epochs": "epochs (cosine annealing spans them)",
    "batch_size": "samples per optimizer step (per process under torchrun)",
    "lr": "AdamW learning rate",
    "weight_decay": "AdamW weight decay",
    "label_smoothing": "cross-entropy label smoothing",
    "scheduler": "cosine or constant",
    "val_ratio": "share of each class's groups held out for validation, where the layout has no split",
    "seed": "seeds the split, the shuffling and dropout",
    "backbone": "visual detector's network: efficientnet-b4 (the specification's) or hf:SOURCE (a hub"
    " image classifier fine-tuned with a new real/fake head, saved to OUT/visual_detector-hf for VISUAL_MODEL=)",
    "backbone_weights": "visual detector's EfficientNet-B4 start: imagenet (download), none, or a state-dict file",
    "device": "auto (CUDA when present), cpu, cuda, cuda:1, ...",
    "amp": "automatic mixed precision on CUDA (--no-amp to turn off)",
    "loader_workers": "DataLoader worker processes",
    "cache": "where extracted samples are kept (default OUT/cache)",
    "repository": "model repository whose face_detector ONNX files crop the faces",
    "progress": "progress bars (--no-progress for logs only)",
    "precise_bn_batches": "training batches BatchNorm statistics are re-estimated on before each validation (0: off)",
    "stop_after": "stop after this epoch; --resume continues (the schedule still spans --epochs)",
}


def parser() -> argparse.ArgumentParser:
    """The command line, one flag per :class:`TrainConfig` field."""
    p = argparse.ArgumentParser(prog="python -m deepfake_train", description=__doc__.split("\n\n")[0])
    p.add_argument("detector", choices=sorted(DETECTORS), help="which detector to train")
    p.add_argument("--data", required=True, help="the dataset's root folder")
    p.add_argument("--out", required=True, help="checkpoint folder (what make serve CHECKPOINTS= reads)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/<model>.last.pt")
    for f in fields(TrainConfig):
        if f.name in ("detector", "data", "out"):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=_HELP[f.name])
        else:
            kind = {"int": int, "float": float, "int | None": int}.get(str(f.type), str)
            p.add_argument(flag, type=kind, default=f.default, help=f"{_HELP[f.name]} (default: {f.default})")
    return p


def main(argv: list[str] | None = None) -> int:
    """Train; exit 2 with one line when the data, weights or resume state cannot be used."""
    args = vars(parser().parse_args(argv))
    resume = args.pop("resume")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        config = TrainConfig(**args)
        summary = train(config, resume=resume)
    except (TrainError, DatasetError, FileNotFoundError) as error:
        logging.getLogger("deepfake_train").error("%s", error)
        return 2
    best = summary["best"] or {}
    written = "visual_detector-hf (serve with VISUAL_MODEL=)" if config.backbone != "efficientnet-b4" else ""
    logging.getLogger("deepfake_train").info(
        "%s: best epoch %s, validation AUC %.4f (per file %.4f); wrote %s/%s",
        summary["model"],
        summary["best_epoch"],
        best.get("val_auc", float("nan")),
        best.get("val_file_auc", float("nan")),
        config.out,
        written or f"{summary['model']}.safetensors",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
