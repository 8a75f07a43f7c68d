"""One training run of one detector: data from the serving code, the specification's recipe, PyTorch's tools.

AdamW, cosine annealing over the epochs, cross-entropy with label smoothing
(the specification's configuration, every value overridable); CUDA with
automatic mixed precision when there is a GPU, the CPU otherwise; several GPUs
through ``torchrun`` (PyTorch DDP: one process per GPU, a ``DistributedSampler``,
rank 0 writes). Each epoch is seeded from ``seed + epoch`` (shuffling, dropout),
so a resumed run continues exactly as an uninterrupted one would.

Written into ``--out`` (the folder ``make serve CHECKPOINTS=...`` reads), for a
detector served as ``<model>``:

* ``<model>.safetensors``: the best epoch by validation AUC, in the parameter
  names the exporter loads (the forensic classifier's scaler included);
* ``<model>.last.pt``: everything needed to resume (``--resume``);
* ``<model>.metrics.csv`` and ``<model>.metrics.png``: per-epoch loss, AUC, accuracy, rate;
* ``<model>.train.json``: the configuration used, the dataset, refused files, the best epoch.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from deepfake_client.datasets import load_dataset, summarize
from deepfake_client.metrics import roc_auc
from deepfake_export.models import BUILDERS, VisualDetector
from deepfake_train import hub
from deepfake_train import samples as S

log = logging.getLogger("deepfake_train")

#: CLI name -> served model name.
DETECTORS = {
    "visual": "visual_detector",
    "forensic": "forensic_classifier",
    "audio": "audio_detector",
    "temporal": "temporal_analyzer",
}


class TrainError(RuntimeError):
    """A run that cannot start or go on: bad data, bad weights, a resume that does not fit."""


@dataclass
class TrainConfig:
    """Everything that defines a run; saved beside the checkpoint. Defaults: the specification's recipe."""

    detector: str
    data: str
    out: str
    layout: str = "folder"
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    scheduler: str = "cosine"  # or "constant"
    val_ratio: float = 0.2
    seed: int = 0
    #: visual only: "efficientnet-b4" (the specification's network) or "hf:SOURCE" (a hub classifier, fine-tuned).
    backbone: str = "efficientnet-b4"
    #: visual only: "imagenet" (efficientnet-pytorch's ImageNet weights, downloaded), "none", or a state-dict file.
    backbone_weights: str = "imagenet"
    device: str = "auto"
    amp: bool = True  # CUDA only
    loader_workers: int = 0
    cache: str | None = None  # default: <out>/cache
    repository: str = "model_repository"  # MTCNN's ONNX files for the face crops
    progress: bool = True
    #: Stop after this epoch (the schedule still spans ``epochs``); ``--resume`` continues. For time-sliced GPUs.
    stop_after: int | None = None
    #: Training batches BatchNorm statistics are re-estimated on before each validation (0: off).
    precise_bn_batches: int = 50

    #: Fields a resumed run may change: the others (``epochs`` too: it shapes the schedule) define the checkpoint.
    RESUMABLE = ("loader_workers", "progress", "device", "cache", "repository", "stop_after")

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise TrainError(f"unknown detector {self.detector!r}; known: {', '.join(DETECTORS)}")
        if self.backbone != "efficientnet-b4" and not self.backbone.startswith(hub.PREFIX):
            raise TrainError(f"--backbone {self.backbone!r}: use efficientnet-b4 or hf:SOURCE")
        if self.backbone.startswith(hub.PREFIX) and self.detector != "visual":
            raise TrainError(f"--backbone {self.backbone}: only the visual detector can be a hub classifier")
        if self.scheduler not in ("cosine", "constant"):
            raise TrainError(f"--scheduler {self.scheduler!r}: use cosine or constant")

    @property
    def model_name(self) -> str:
        """The served model this run trains."""
        return DETECTORS[self.detector]


@dataclass
class Distributed:
    """This process's place in a ``torchrun`` launch (world of one without it)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, device_type: str) -> Distributed:
        """Join the process group when ``torchrun`` started us (``WORLD_SIZE`` > 1)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), world=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def main(self) -> bool:
        """Rank 0: the process that extracts, evaluates for the record and writes."""
        return self.rank == 0

    def close(self) -> None:
        """Leave the process group (a no-op alone)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()

    def barrier(self) -> None:
        """Wait for every rank (a no-op alone)."""
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


class Samples(Dataset):
    """A :class:`~deepfake_train.samples.SampleSet` as (stored sample, label) pairs."""

    def __init__(self, sample_set: S.SampleSet) -> None:
        """Index every sample of every file."""
        self.set = sample_set
        self.rows = sample_set.index()

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        """The stored sample ``i`` (before normalization) and its file's label."""
        f, k = self.rows[i]
        return np.asarray(self.set.arrays[f][k]), int(self.set.labels[f])


def _collate(to_input):
    def collate(batch: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_input(np.stack([b[0] for b in batch]))
        return torch.from_numpy(np.ascontiguousarray(x)), torch.tensor([b[1] for b in batch], dtype=torch.long)

    return collate


def resolve_device(requested: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(f"--device {requested}: no CUDA device here")
    return device


def build_model(config: TrainConfig, train_set: S.SampleSet) -> nn.Module:
    """The served architecture, initialized as the specification says (or a hub classifier, ``--backbone hf:``)."""
    if config.backbone.startswith(hub.PREFIX):
        try:
            return hub.load(config.backbone)
        except hub.SourceError as error:
            raise TrainError(str(error)) from None
    model = BUILDERS[config.model_name]()
    if isinstance(model, VisualDetector):
        _load_backbone(model, config.backbone_weights)
    if config.detector == "forensic":
        # The scaler is fitted on the training features (StandardScaler: population std, 1 where constant).
        features = np.concatenate([np.asarray(a, np.float64) for a in train_set.arrays])
        std = features.std(axis=0)
        model.scaler.mean.copy_(torch.from_numpy(features.mean(axis=0)).float())
        model.scaler.scale.copy_(torch.from_numpy(np.where(std > 0, std, 1.0)).float())
    return model


def _load_backbone(model: VisualDetector, source: str) -> None:
    if source == "none":
        return
    if source == "imagenet":
        from efficientnet_pytorch.utils import url_map

        try:
            state = torch.hub.load_state_dict_from_url(
                url_map["efficientnet-b4"], map_location="cpu", weights_only=True
            )
        except Exception as error:  # noqa: BLE001 - urllib raises many types; each is one line to the user
            raise TrainError(
                f"--backbone-weights imagenet: cannot download efficientnet-b4's ImageNet weights ({error});"
                " offline, pass --backbone-weights FILE (efficientnet-pytorch's state dict) or none"
            ) from None
    else:
        from deepfake_export.weights import CheckpointError, read_state_dict

        path = Path(source)
        if not path.is_file():
            raise TrainError(f"--backbone-weights {source}: no such file")
        try:
            state = read_state_dict(path)
        except (CheckpointError, RuntimeError, OSError) as error:
            raise TrainError(f"--backbone-weights {source}: not a state dict ({error})") from None
    state = {
        k.removeprefix("backbone."): v for k, v in state.items() if not k.removeprefix("backbone.").startswith("_fc.")
    }
    result = model.backbone.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise TrainError(
            f"--backbone-weights {source} does not fit EfficientNet-B4: missing {result.missing_keys[:5]},"
            f" unexpected {result.unexpected_keys[:5]}"
        )


def _check_classes(name: str, sample_set: S.SampleSet) -> None:
    counts = {label: int(np.sum(sample_set.labels == value)) for label, value in (("real", 0), ("fake", 1))}
    missing = [label for label, n in counts.items() if n == 0]
    if missing:
        raise TrainError(f"the {name} split has no {' and no '.join(missing)} file with samples ({counts})")


def _evaluate(model: nn.Module, dataset: Samples, loader: DataLoader, device: torch.device, criterion) -> dict:
    model.eval()
    probs, losses = [], []
    with torch.no_grad():
        for x, y in loader:
            logits = model(x.to(device)).float()
            losses.append(float(criterion(logits, y.to(device))) * len(y))
            probs.append(torch.softmax(logits, 1)[:, 1].cpu().numpy())
    p = np.concatenate(probs)
    files = dataset.rows[:, 0]
    labels = dataset.set.labels[files]
    # File level: the mean of a file's sample scores (DeepfakeBench's video-level convention).
    per_file = np.bincount(files, weights=p) / np.bincount(files)
    return {
        "val_loss": sum(losses) / len(p),
        "val_auc": roc_auc(labels, p),
        "val_file_auc": roc_auc(dataset.set.labels, per_file),
        "val_accuracy": float(np.mean((p >= 0.5) == labels)),
    }


def _save_state_dict(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    partial = path.with_suffix(".tmp")
    save_file(state, str(partial))
    partial.replace(path)


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in fields(config)}


def _resume_state(config: TrainConfig, path: Path) -> dict | None:
    if not path.is_file():
        raise TrainError(f"--resume: {path} does not exist (nothing to resume)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state["config"]
    changed = sorted(k for k, v in _config_dict(config).items() if k not in TrainConfig.RESUMABLE and saved.get(k) != v)
    if changed:
        raise TrainError(
            f"--resume: {path} was trained with other settings: "
            + ", ".join(f"{k} {saved.get(k)!r} (now {getattr(config, k)!r})" for k in changed)
        )
    return state


def _write_history(out: Path, name: str, history: list[dict]) -> None:
    with (out / f"{name}.metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss, auc) = plt.subplots(1, 2, figsize=(10, 4))
    loss.plot(epochs, [r["train_loss"] for r in history], label="train")
    loss.plot(epochs, [r["val_loss"] for r in history], label="validation")
    loss.set(xlabel="epoch", ylabel="loss", title=f"{name}: loss")
    loss.legend()
    auc.plot(epochs, [r["val_auc"] for r in history], label="per sample")
    auc.plot(epochs, [r["val_file_auc"] for r in history], label="per file")
    auc.set(xlabel="epoch", ylabel="AUC", title=f"{name}: validation AUC", ylim=(0, 1.02))
    auc.legend()
    figure.tight_layout()
    figure.savefig(out / f"{name}.metrics.png", dpi=100)
    plt.close(figure)


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run ``config``; return the summary written to ``<model>.train.json``.

    Raises:
        TrainError: the data, the initial weights or the resume state cannot be used
            (``deepfake_client.datasets.DatasetError`` for a dataset that does not match its layout).
    """
    run = Run(config)
    run.prepare_data()
    run.prepare_model()
    if resume:
        run.resume()
    for epoch in range(run.start, min(config.epochs, config.stop_after or config.epochs)):
        run.epoch(epoch)
    return run.finish()


class Run:
    """The state of one training run, phase by phase (see :func:`train`)."""

    def __init__(self, config: TrainConfig) -> None:
        """Choose the device and join ``torchrun``'s process group when there is one."""
        self.config = config
        self.device = resolve_device(config.device)
        self.dist = Distributed.from_env(self.device.type)
        if self.dist.world > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.out, self.name = Path(config.out), config.model_name
        self.out.mkdir(parents=True, exist_ok=True)
        self.state_path = self.out / f"{self.name}.last.pt"
        self.start, self.best_auc, self.best_epoch, self.history = 0, -math.inf, 0, []
        torch.manual_seed(config.seed)

    def prepare_data(self) -> None:
        """The dataset's train and validation samples, through the serving code (cached)."""
        config, dist = self.config, self.dist
        self.items = load_dataset(config.data, config.layout, val_ratio=config.val_ratio, seed=config.seed)
        extractor = S.Extractor(config.detector, Path(config.repository) / "face_detector" / "1")
        cache = Path(config.cache) if config.cache else self.out / "cache"
        self.sets: dict[str, S.SampleSet] = {}
        self.refused: list[S.Refused] = []
        # Rank 0 decodes into the cache; the others then read it instead of decoding the same files again.
        for turn in (True, False):
            if dist.main == turn:
                for split in ("train", "val"):
                    chosen = [i for i in self.items if i.split == split]
                    self.sets[split], bad = S.build(chosen, extractor, cache, _bar(config, dist, f"{split} samples"))
                    self.refused += bad
            dist.barrier()
        for split in ("train", "val"):
            _check_classes(split, self.sets[split])
        for problem in self.refused:
            log.warning("not trained on %s: %s", problem.path, problem.problem)
        self.train_data, self.val_data = Samples(self.sets["train"]), Samples(self.sets["val"])

    def prepare_model(self) -> None:
        """The network, its optimizer, schedule, loss and (on CUDA) gradient scaler."""
        config, device = self.config, self.device
        model = build_model(config, self.sets["train"]).to(device)
        # A hub classifier normalizes crops its own way (its processor's); the others as the server does for them.
        self.collate = _collate(model.to_input if isinstance(model, hub.HubClassifier) else S.TO_INPUT[config.detector])
        self.val_loader = DataLoader(
            self.val_data, batch_size=config.batch_size, collate_fn=self.collate, num_workers=config.loader_workers
        )
        if self.dist.world > 1:
            if device.type == "cuda":
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            ids = [device.index] if device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.model = model
        self.bare = model.module if self.dist.world > 1 else model
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=config.epochs)
            if config.scheduler == "cosine"
            else torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        )
        self.amp = config.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)

    def resume(self) -> None:
        """Continue from ``<model>.last.pt``."""
        state = _resume_state(self.config, self.state_path)
        self.bare.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.start, self.best_auc = state["epoch"], state["best_auc"]
        self.best_epoch, self.history = state["best_epoch"], state["history"]
        log.info(
            "%s: resumed after epoch %d (best validation AUC %.4f at epoch %d)",
            self.name,
            self.start,
            self.best_auc,
            self.best_epoch,
        )

    def _loader(self, epoch: int) -> DataLoader:
        config, data = self.config, self.train_data
        # BatchNorm cannot train on a batch of one: a last batch of one is dropped.
        drop_last = len(data) % (config.batch_size * self.dist.world) == 1
        common = {"collate_fn": self.collate, "drop_last": drop_last, "num_workers": config.loader_workers}
        if self.dist.world > 1:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(
                data, self.dist.world, self.dist.rank, shuffle=True, seed=config.seed, drop_last=True
            )
            sampler.set_epoch(epoch)
            return DataLoader(data, config.batch_size, sampler=sampler, **common)
        generator = torch.Generator().manual_seed(config.seed + epoch)
        return DataLoader(data, config.batch_size, shuffle=True, generator=generator, **common)

    def epoch(self, epoch: int) -> None:
        """Train one epoch, then (rank 0) validate, keep the best and write the resume state."""
        config, device = self.config, self.device
        torch.manual_seed(config.seed + epoch)
        self.model.train()
        seen, total_loss, started = 0, 0.0, time.perf_counter()
        bar = _bar(config, self.dist, f"{self.name} epoch {epoch + 1}/{config.epochs}")(self._loader(epoch))
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=self.amp):
                loss = self.criterion(self.model(x), y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            seen += len(y)
            total_loss += float(loss.detach()) * len(y)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", rate=f"{seen / (time.perf_counter() - started):.1f}/s")
        rate = seen * self.dist.world / (time.perf_counter() - started)
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        if self.dist.main:
            self._precise_bn(epoch)
            row = {"epoch": epoch + 1, "train_loss": total_loss / max(seen, 1), "lr": lr, "samples_per_s": rate}
            row.update(_evaluate(self.bare, self.val_data, self.val_loader, device, self.criterion))
            self._record(row)
        self.dist.barrier()

    def _precise_bn(self, epoch: int) -> None:
        """Re-estimate BatchNorm's running statistics for the weights as they are now.

        Running averages with momentum 0.1 (EfficientNet's 0.01) trail the
        weights; after a few hundred steps, or a few, they describe a network
        that no longer exists, and evaluation (which uses them) scores every
        input alike. One pass over training batches with a cumulative average
        fixes that before validating and saving (the "precise BN" of
        detection and video-classification training). Rank 0's statistics
        reach the other ranks with DDP's buffer broadcast at the next step.
        """
        norms = [m for m in self.bare.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms or self.config.precise_bn_batches <= 0:
            return
        momenta = [m.momentum for m in norms]
        self.bare.eval()  # dropout off: only the norms see training-mode batches
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the pass
            m.train()
        data = self.train_data
        generator = torch.Generator().manual_seed(self.config.seed + epoch + 1)
        drop_last = len(data) % self.config.batch_size == 1
        loader = DataLoader(
            data,
            self.config.batch_size,
            shuffle=True,
            generator=generator,
            collate_fn=self.collate,
            drop_last=drop_last,
        )
        with torch.no_grad():
            for i, (x, _) in enumerate(loader):
                if i >= self.config.precise_bn_batches:
                    break
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    self.bare(x.to(self.device))
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        self.model.train()

    def _record(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        log.info(
            "%s epoch %d: train loss %.4f, validation loss %.4f, AUC %.4f (per file %.4f), %.1f samples/s",
            self.name,
            row["epoch"],
            row["train_loss"],
            row["val_loss"],
            row["val_auc"],
            row["val_file_auc"],
            row["samples_per_s"],
        )
        if row["val_file_auc"] > self.best_auc:
            self.best_auc, self.best_epoch = row["val_file_auc"], row["epoch"]
            if isinstance(self.bare, hub.HubClassifier):
                self.bare.save(self.out / hub.FOLDER)  # served with VISUAL_MODEL=OUT/visual_detector-hf
            else:
                _save_state_dict(self.bare, self.out / f"{self.name}.safetensors")
        _write_history(self.out, self.name, self.history)
        partial = self.state_path.with_suffix(".tmp")
        torch.save(
            {
                "model": self.bare.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": row["epoch"],
                "best_auc": self.best_auc,
                "best_epoch": self.best_epoch,
                "history": self.history,
                "config": _config_dict(self.config),
            },
            partial,
        )
        partial.replace(self.state_path)  # an interrupted save never spoils the last good state

    def finish(self) -> dict[str, Any]:
        """The run's summary, written (rank 0) to ``<model>.train.json``."""
        summary = {
            "model": self.name,
            "config": _config_dict(self.config),
            "dataset": summarize(self.items),
            "samples": {split: len(s) for split, s in self.sets.items()},
            "refused": [{"path": str(r.path), "problem": r.problem} for r in self.refused],
            "best_epoch": self.best_epoch,
            "best": next((r for r in self.history if r["epoch"] == self.best_epoch), None),
            "history": self.history,
            "device": str(self.device),
            "world_size": self.dist.world,
            "amp": self.amp,
            "torch": torch.__version__,
            "serving_code": S.serving_fingerprint(),
        }
        if self.dist.main:
            (self.out / f"{self.name}.train.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        self.dist.close()
        return summary


def _bar(config: TrainConfig, dist: Distributed, description: str):
    """A tqdm progress bar over an iterable on rank 0 when asked for; the iterable itself otherwise."""
    if not (config.progress and dist.main):
        return lambda iterable: iterable
    from tqdm import tqdm

    return lambda iterable: tqdm(iterable, desc=description, file=sys.stderr, leave=False, dynamic_ncols=True)
