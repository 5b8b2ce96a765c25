"""Node records of the IR: what a node computes, its output type and when it exists.

Every record is frozen; passes build new ones with :func:`attrs.evolve`. Records refer to other
nodes only through the graph's edges, never by object.

>>> from nasc.ir.types import TensorType
>>> Op(id=3, op="sep_conv_3x3", params=(("C", 16), ("stride", 1)),
...    type=TensorType.image(16)).param("C")
16
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs
from nasc.ir.guards import Guard
from nasc.ir.location import SourceLoc
from nasc.ir.types import TensorType


class NodeKind(enum.Enum):
    INPUT = "input"
    OUTPUT = "output"
    OP = "op"
    MERGE = "merge"
    ALIGN = "align"
    OP_CHOICE = "op_choice"
    INPUT_CHOICE = "input_choice"
    REPEAT_CHOICE = "repeat_choice"
    VALUE_CHOICE = "value_choice"
    MIXTURE = "mixture"
    INPUT_MIXTURE = "input_mixture"


@attrs.frozen(kw_only=True)
class Node:
    """Fields every node has.

    ``type`` is the type of the node's output (``None`` for nodes without a tensor output).
    ``guard`` is the condition under which the node exists (``Guard.TRUE`` outside choices).
    """

    kind: ClassVar[NodeKind]
    #: Number of tensor inputs, or ``None`` for "one or more".
    arity: ClassVar[int | None] = 1

    id: int
    type: TensorType | None
    guard: Guard = Guard.TRUE
    loc: SourceLoc | None = None


@attrs.frozen(kw_only=True)
class Input(Node):
    """A network input, ``input x: image(3)``."""

    kind: ClassVar[NodeKind] = NodeKind.INPUT
    arity: ClassVar[int | None] = 0
    name: str


@attrs.frozen(kw_only=True)
class Output(Node):
    """A network output; its type is its input's."""

    kind: ClassVar[NodeKind] = NodeKind.OUTPUT
    name: str


@attrs.frozen(kw_only=True)
class Op(Node):
    """A call of a declared primitive op with concrete (or symbolic) parameters."""

    kind: ClassVar[NodeKind] = NodeKind.OP
    arity: ClassVar[int | None] = None
    op: str
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str) -> Any:
        return dict(self.params)[name]


@attrs.frozen(kw_only=True)
class Merge(Node):
    """``sum`` (all inputs one type) or ``concat`` (along channels) of its inputs."""

    kind: ClassVar[NodeKind] = NodeKind.MERGE
    arity: ClassVar[int | None] = None
    mode: Literal["sum", "concat"] = attrs.field(validator=attrs.validators.in_(("sum", "concat")))


@attrs.frozen(kw_only=True)
class Align(Node):
    """Bring the input to ``type`` (channels and stride); a pass picks how, by ``policy``."""

    kind: ClassVar[NodeKind] = NodeKind.ALIGN
    policy: str | None = None


@attrs.frozen(kw_only=True)
class OpChoice(Node):
    """One of ``options``; input slot ``i`` is the output of candidate ``options[i]``."""

    kind: ClassVar[NodeKind] = NodeKind.OP_CHOICE
    arity: ClassVar[int | None] = None
    label: str
    options: tuple[str, ...]


@attrs.frozen(kw_only=True)
class InputChoice(Node):
    """``k_min``..``k_max`` of its ``n`` inputs, merged by ``merge``."""

    kind: ClassVar[NodeKind] = NodeKind.INPUT_CHOICE
    arity: ClassVar[int | None] = None
    label: str
    n: int
    k_min: int
    k_max: int
    merge: Literal["sum", "concat"] = "sum"

    @property
    def options(self) -> tuple[int, ...]:
        return tuple(range(self.n))


@attrs.frozen(kw_only=True)
class RepeatChoice(Node):
    """A block repeated ``d`` times, ``d`` in ``depths``; input slot ``i`` is the state after
    ``depths[i]`` repetitions."""

    kind: ClassVar[NodeKind] = NodeKind.REPEAT_CHOICE
    arity: ClassVar[int | None] = None
    label: str
    depths: tuple[int, ...]

    @property
    def options(self) -> tuple[int, ...]:
        return self.depths


@attrs.frozen(kw_only=True)
class ValueChoice(Node):
    """A value (width, kernel, expansion...) that op parameters refer to as ``Sym.var(label)``."""

    kind: ClassVar[NodeKind] = NodeKind.VALUE_CHOICE
    arity: ClassVar[int | None] = 0
    label: str
    values: tuple[Any, ...]

    @property
    def options(self) -> tuple[Any, ...]:
        return self.values


@attrs.frozen(kw_only=True)
class Mixture(Node):
    """A relaxed op (or repeat) choice: ``sum_k w_k * o_k`` over its options.

    DARTS eq. 2 / DCNAS eq. 1–2 / DenseNAS eq. 1–2 with ``weighting="softmax"``:
    ``w = softmax(alpha)``; GDAS/SNAS with ``"gumbel"``: ``w = softmax((alpha + g) / tau)``, and
    ``hard`` for the straight-through one-hot. ``computed[k]`` is false for zero candidates:
    their weight stays in the normalisation, their output (zero) is never computed, and they
    have no input slot. ``sampling`` names how paths are drawn per step (``None``: all run).
    """

    kind: ClassVar[NodeKind] = NodeKind.MIXTURE
    arity: ClassVar[int | None] = None
    label: str
    options: tuple[Any, ...]
    computed: tuple[bool, ...]
    weighting: Literal["softmax", "gumbel"] = "softmax"
    tau: float = 1.0
    hard: bool = False
    sampling: Literal["uniform", "binary_gate", "multinomial"] | None = None
    paths: int = 1
    #: ``"op"`` for a relaxed op choice, ``"repeat"`` for a relaxed depth choice.
    source_kind: Literal["op", "repeat"] = "op"

    @property
    def live_options(self) -> tuple[Any, ...]:
        return tuple(o for o, c in zip(self.options, self.computed) if c)


@attrs.frozen(kw_only=True)
class InputMixture(Node):
    """A relaxed input choice over its ``n`` inputs, merged by ``merge``.

    ``weighting="zero"``: the DARTS form, every input summed, the decision left to the zero
    candidate of each input's own mixture (top-k derivation). ``"softmax"``: edge weights
    ``beta`` normalised over this node's inputs (PC-DARTS edge normalisation; DCNAS eq. 3–4),
    or over the outgoing edges of each source with ``normalize="outgoing"`` (DenseNAS eq. 3–4).
    ``paths > 0`` samples that many inputs per step without replacement, with probabilities
    ``softmax(beta / tau)`` (DCNAS eq. 5–6).
    """

    kind: ClassVar[NodeKind] = NodeKind.INPUT_MIXTURE
    arity: ClassVar[int | None] = None
    label: str
    n: int
    k_min: int
    k_max: int
    merge: Literal["sum", "concat"] = "sum"
    weighting: Literal["zero", "softmax"] = "zero"
    normalize: Literal["inputs", "outgoing"] = "inputs"
    tau: float = 1.0
    paths: int = 0

    @property
    def options(self) -> tuple[int, ...]:
        return tuple(range(self.n))


CHOICE_KINDS = (OpChoice, InputChoice, RepeatChoice, ValueChoice)
RELAXED_KINDS = (Mixture, InputMixture)
ChoiceNode = OpChoice | InputChoice | RepeatChoice | ValueChoice


def choice_kind(node: Node) -> str:
    """The user-facing kind name: ``op``, ``input``, ``value`` or ``repeat``."""
    return {
        NodeKind.OP_CHOICE: "op",
        NodeKind.INPUT_CHOICE: "input",
        NodeKind.VALUE_CHOICE: "value",
        NodeKind.REPEAT_CHOICE: "repeat",
        NodeKind.INPUT_MIXTURE: "input",
    }.get(node.kind) or node.source_kind


def is_identity_op(op: str, params: Mapping[str, Any], ins: Sequence[Any], out: Any) -> bool:
    """Whether an op call computes its input unchanged: ``identity``, or ``skip_connect`` at
    stride 1 keeping the type (DARTS' ``Identity``). ``ins`` and ``out`` are the input and
    output types."""
    if len(ins) != 1 or ins[0] != out:
        return False
    return op == "identity" or (op == "skip_connect" and params.get("stride", 1) == 1)
