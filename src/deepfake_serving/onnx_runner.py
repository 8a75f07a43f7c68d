"""Run one ONNX model for a dynamic batch of Triton requests.

This is the engine of the project's Python-based ``onnxruntime`` backend (see
``triton_backends/onnxruntime/model.py``), kept free of Triton imports so unit
tests can drive it: Triton merges requests, we concatenate their inputs, make
one ONNX Runtime call and hand every request its own slice back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from deepfake_serving.errors import RequestError
from deepfake_serving.validation import finite


@dataclass(frozen=True)
class SessionSettings:
    """What a model's ``config.pbtxt`` says about its ONNX Runtime session."""

    intra_op_threads: int = 0  # 0: ONNX Runtime's default (one per core)
    inter_op_threads: int = 1
    #: Batches up to this size keep the arena's memory for the next one; a larger batch gives its
    #: growth back when it ends. 0: every batch gives it back.
    keep_arena_batch: int = 0

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, str]) -> SessionSettings:
        """Read the thread counts and the arena rule from a config's string parameters; missing ones keep the defaults."""
        return cls(
            intra_op_threads=int(parameters.get("intra_op_thread_count", 0)),
            inter_op_threads=int(parameters.get("inter_op_thread_count", 1)),
            keep_arena_batch=int(parameters.get("keep_arena_batch", 0)),
        )


class OnnxRunner:
    """One ONNX Runtime session and the batch bookkeeping around it."""

    def __init__(self, path: Path, settings: SessionSettings) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = settings.intra_op_threads
        options.inter_op_num_threads = settings.inter_op_threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        # A batch larger than any before (8 temporal clips, 64 faces) would keep its memory for the
        # life of the server, so such a batch gives the arena's growth back when it ends. Ordinary
        # batches do not: giving it back makes every run allocate (and fault in) its memory again,
        # a visible share of a small batch's CPU.
        self._keep_arena_batch = settings.keep_arena_batch
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def check_signature(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        """Fail at load time if the config and the ONNX file disagree."""
        if sorted(inputs) != sorted(self.input_names) or not set(outputs) <= set(self.output_names):
            raise ValueError(
                f"config declares inputs {sorted(inputs)} and outputs {sorted(outputs)}, "
                f"the ONNX file has inputs {self.input_names} and outputs {self.output_names}"
            )

    def run_batch(
        self, requests: Sequence[Mapping[str, np.ndarray]], outputs: Sequence[str]
    ) -> list[dict[str, np.ndarray]]:
        """Run every request's inputs as one batch; return one dict per request.

        Each request's arrays have the request's own batch size as their first
        dimension (Triton checked shapes and dtypes against the config).
        """
        if not requests:
            return []
        sizes = [len(next(iter(r.values()))) for r in requests]
        feeds = {
            name: requests[0][name] if len(requests) == 1 else np.concatenate([r[name] for r in requests])
            for name in self.input_names
        }
        options = self._shrink if sum(sizes) > self._keep_arena_batch else None
        results = self.session.run(list(outputs), feeds, options)
        bounds = np.cumsum(sizes)[:-1]
        split = [np.split(result, bounds) for result in results]
        return [{name: split[j][i] for j, name in enumerate(outputs)} for i in range(len(requests))]


def non_finite_inputs(feed: Mapping[str, np.ndarray]) -> str | None:
    """A client-facing message if any float input holds NaN or Inf, else None.

    ONNX Runtime would carry them into NaN scores; a score must never be NaN,
    so such a request is refused instead, with :func:`validation.finite`'s message.
    """
    try:
        for name, array in feed.items():
            if array.dtype.kind == "f":
                finite(name, array)
    except RequestError as error:
        return str(error)
    return None


def onnx_callable(path: Path, threads: int = 1):
    """An ONNX file as a plain ``f(x) -> list of outputs`` (MTCNN's stages)."""
    runner = OnnxRunner(path, SessionSettings(intra_op_threads=threads))
    name = runner.input_names[0]

    def run(x: np.ndarray) -> list[np.ndarray]:
        return runner.session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})

    return run
