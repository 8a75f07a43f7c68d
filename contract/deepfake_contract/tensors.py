"""The two types every contract is written in: a tensor and a model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Triton's config spelling (``TYPE_`` + this) -> NumPy's dtype name.
NUMPY_DTYPES = {
    "FP32": "float32",
    "FP16": "float16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "BOOL": "bool",
    "STRING": "object",
}

#: Limit values as they are written in ``config.pbtxt`` parameters.
LimitValue = int | float | str


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model, without the batch dimension.

    Attributes:
        name: the tensor's name on the wire and in ``config.pbtxt``.
        dims: its shape; -1 is a dimension that varies per request.
        dtype: Triton's spelling (``FP32``, ``STRING``, ...); clients say ``BYTES`` for ``STRING``.
        meaning: what a user reads it as, units and sentinels included.
        optional: an input a caller may leave out.
    """

    name: str
    dims: tuple[int, ...]
    dtype: str = "FP32"
    meaning: str = ""
    optional: bool = False

    @property
    def wire_dtype(self) -> str:
        """The dtype as the client libraries and the inference protocol spell it."""
        return "BYTES" if self.dtype == "STRING" else self.dtype

    @property
    def numpy_dtype(self) -> str:
        """The NumPy dtype name of the tensor's data."""
        return NUMPY_DTYPES[self.dtype]


@dataclass(frozen=True)
class ModelSpec:
    """A model Triton serves: its tensors, batching and limits.

    A tensor is reachable as an attribute named like it (``DETECT_AUDIO.FAKE_PROB``),
    so a misspelt name fails where it is written instead of at the other end of the wire.

    Attributes:
        name: the model's name in the repository.
        inputs: its inputs, in config order.
        outputs: its outputs, in config order.
        max_batch_size: 0 when the model does not batch (the first dimension is then part of ``dims``).
        description: one line on what it does.
        limits: the ``config.pbtxt`` parameters that bound what one request may cost,
            with the values the repository ships.
    """

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int
    description: str
    limits: Mapping[str, LimitValue] = field(default_factory=dict)

    def __getattr__(self, name: str) -> TensorSpec:
        # Only called for names that are not fields: those are tensor names.
        # Dunder and private lookups (copy, pickle) and a half-built instance
        # (no ``inputs`` yet) must fail plainly, not recurse.
        if name.startswith("_") or "inputs" not in self.__dict__:
            raise AttributeError(name)
        for tensor in (*self.inputs, *self.outputs):
            if tensor.name == name:
                return tensor
        raise AttributeError(f"{self.name} has no tensor {name!r}; it has {', '.join(self.tensor_names)}")

    @property
    def tensor_names(self) -> tuple[str, ...]:
        """Every input and output name."""
        return tuple(t.name for t in (*self.inputs, *self.outputs))

    @property
    def input_names(self) -> tuple[str, ...]:
        """The inputs' names, in order."""
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The outputs' names, in order."""
        return tuple(t.name for t in self.outputs)

    def limit(self, name: str) -> LimitValue:
        """One shipped limit, by its config parameter name."""
        try:
            return self.limits[name]
        except KeyError:
            raise KeyError(f"{self.name} has no limit {name!r}; it has {', '.join(self.limits)}") from None
