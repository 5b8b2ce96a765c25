"""Cost models on the IR: parameters, multiply-accumulates and activation memory.

Three costs of a network, read off the IR alone (nothing here imports torch):

* ``"params"`` — trainable parameters, exactly as the PyTorch reference modules count them
  (``sum(p.numel() for p in m.parameters())``; BN running statistics are buffers, not counted).
  Every ``Op`` node is its own module: two nodes that share a label share a *decision*, never
  weights.
* ``"macs"`` — multiply-accumulates of the convolutions and linear layers for one image of
  ``input_size`` (the "multi-adds" of the papers; BN, activations, pooling and additions count 0).
* ``"memory"`` — activation memory: the output elements of every node of the network (inputs,
  ops, merges, aligns; an output node is its input and is not counted again). Elements, not
  bytes, unless ``bytes_per_element`` says otherwise.

A fourth kind, ``"latency"``, comes from a measured look-up table per op and shape
(:class:`LatencyTable`, module ``latency``; ``nasc profile`` measures one on this machine).

Each op's cost comes from a :class:`CostTable` (:data:`DEFAULT` covers the stdlib ops; extend it
for your own with :meth:`CostTable.with_op` and pass ``table=``). An ``Align`` node costs the ops
``insert_alignment`` lowers it to. Only nodes an output depends on count, as in
``Space.resolve``.

A tensor with stride ``s`` (relative to the network input, see :class:`TensorType`) is
``ceil(H / s) x ceil(W / s)``, the size a "same"-padded PyTorch conv gives. Vectors are 1 x 1.

:func:`cost` answers for a choice-free graph. :func:`expected_cost` answers for a space under a
distribution over its decisions. It is the expected latency of DenseNAS (Fang et al.) eq. 5–7
with any per-op cost in place of the latency table: eq. 5, ``latency_l = sum_o w_o latency_o``
for a layer's candidates; eq. 6, ``latency_l = p_ji sum_o w_o latency_o`` for a head layer fed
by block ``j`` with probability ``p_ji``; eq. 7, ``latency = sum_l latency_l``. In general,
``E[cost] = sum_n P(node n is in the network) * cost(n)``, where ``P`` comes from the node's
guard and its uses (see :func:`expected_cost`). :func:`unit_cost` is HR-NAS (Ding et al.)
eq. 6: ``Delta = O(n') - O(n' - 1)``, the cost of one more channel or token of a value choice.

Modules: ``table`` (:class:`OpCall`, layers, :class:`OpCost`, :class:`CostTable`), ``stdlib``
(the stdlib ops' models, :data:`DEFAULT`), ``conditions`` (DNFs over decisions and their
probabilities), ``model`` (costing graphs).

>>> import nasc
>>> g = nasc.parse('''
... import nn
... space tiny() {
...     input x: image(3)
...     output y = linear(global_avg_pool(conv2d(x, 8, k=3)), 10)
... }''').graph
>>> cost(g, "params")          # conv 3*8*3*3 + linear 8*10 + 10
306
>>> cost(g, "macs", input_size=(4, 4))   # 16 * 8 * 27 + 80
3536
"""

from nasc.ir.cost.latency import LatencyTable, call_key, op_calls
from nasc.ir.cost.model import (
    MAX_ASSIGNMENTS,
    cost,
    expected_cost,
    label_options,
    node_costs,
    one_hot,
    unit_cost,
)
from nasc.ir.cost.stdlib import DEFAULT, se_channels
from nasc.ir.cost.table import (
    BN,
    KINDS,
    Conv,
    CostError,
    CostFn,
    CostTable,
    Linear,
    OpCall,
    OpCost,
    output_elements,
)

__all__ = [
    "BN",
    "DEFAULT",
    "KINDS",
    "LatencyTable",
    "MAX_ASSIGNMENTS",
    "Conv",
    "CostError",
    "CostFn",
    "CostTable",
    "Linear",
    "OpCall",
    "OpCost",
    "call_key",
    "cost",
    "expected_cost",
    "label_options",
    "node_costs",
    "one_hot",
    "op_calls",
    "output_elements",
    "se_channels",
    "unit_cost",
]
