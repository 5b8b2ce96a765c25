"""The IR graph: a ``networkx.MultiDiGraph`` of frozen node records.

Nodes are integer ids; the record sits in the node attribute ``rec``. An edge ``u -> v`` carries
``slot``, the position of ``u`` among ``v``'s inputs. Ids grow in creation order, which
elaboration keeps topological; :meth:`Graph.topo_order` does not rely on it.

>>> from nasc.ir.nodes import Input, Output
>>> from nasc.ir.types import TensorType
>>> g = Graph()
>>> x = g.add(Input, type=TensorType.image(3), name="x")
>>> y = g.add(Output, [x], type=TensorType.image(3), name="y")
>>> g.inputs(y)
[0]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import attrs
import networkx as nx
from nasc.ir.nodes import CHOICE_KINDS, RELAXED_KINDS, Node

N = TypeVar("N", bound=Node)


class Graph:
    """A typed dataflow graph with choice nodes."""

    def __init__(self) -> None:
        self._g = nx.MultiDiGraph()
        self._next = 0
        self._order: list[int] | None = None

    # -- building --------------------------------------------------------------------------
    def add(self, cls: type[N], inputs: Sequence[int] = (), **fields: Any) -> int:
        """Create a node of record class ``cls`` reading ``inputs`` in order; return its id."""
        self._order = None
        nid = self._next
        self._next += 1
        rec = cls(id=nid, **fields)
        self._g.add_node(nid, rec=rec)
        for slot, src in enumerate(inputs):
            self._g.add_edge(src, nid, slot=slot)
        return nid

    def replace(self, nid: int, rec: Node) -> None:
        """Swap the record of node ``nid`` (same id); edges stay."""
        assert rec.id == nid
        self._g.nodes[nid]["rec"] = rec

    def update(self, nid: int, **changes: Any) -> None:
        self.replace(nid, attrs.evolve(self[nid], **changes))

    def set_inputs(self, nid: int, inputs: Sequence[int]) -> None:
        """Make ``inputs`` the ordered inputs of ``nid``."""
        self._order = None
        for u, _, k in list(self._g.in_edges(nid, keys=True)):
            self._g.remove_edge(u, nid, k)
        for slot, src in enumerate(inputs):
            self._g.add_edge(src, nid, slot=slot)

    def redirect(self, old: int, new: int) -> None:
        """Make every user of ``old`` read ``new`` instead."""
        self._order = None
        for _, v, k, data in list(self._g.out_edges(old, keys=True, data=True)):
            self._g.remove_edge(old, v, k)
            self._g.add_edge(new, v, slot=data["slot"])

    def remove(self, nid: int) -> None:
        self._order = None
        self._g.remove_node(nid)

    def copy(self) -> Graph:
        g = Graph()
        g._g = self._g.copy()
        g._next = self._next
        g._order = self._order
        return g

    def renumbered(self, mapping: dict[int, int] | None = None) -> Graph:
        """A copy whose ids are 0..n-1 in topological order (canonical names for printing);
        ``mapping``, when given, receives ``old id -> new id``."""
        g = Graph()
        new: dict[int, int] = {} if mapping is None else mapping
        for old in self.topo_order():
            rec = attrs.evolve(self[old], id=g._next)
            new[old] = g._next
            g._g.add_node(g._next, rec=rec)
            g._next += 1
            for slot, src in enumerate(self.inputs(old)):
                g._g.add_edge(new[src], new[old], slot=slot)
        return g

    # -- reading ---------------------------------------------------------------------------
    def __getitem__(self, nid: int) -> Node:
        return self._g.nodes[nid]["rec"]

    def __contains__(self, nid: int) -> bool:
        return nid in self._g

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __iter__(self) -> Iterator[Node]:
        return (self[n] for n in self.topo_order())

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The underlying networkx graph (read it; build through :class:`Graph`)."""
        return self._g

    def inputs(self, nid: int) -> list[int]:
        edges = sorted(self._g.in_edges(nid, data="slot"), key=lambda e: e[2])
        return [u for u, _, _ in edges]

    def in_slots(self, nid: int) -> list[int]:
        return sorted(s for _, _, s in self._g.in_edges(nid, data="slot"))

    def users(self, nid: int) -> list[int]:
        return sorted({v for _, v in self._g.out_edges(nid)})

    def topo_order(self) -> list[int]:
        """Node ids in topological order, ties broken by id (cached until the graph changes)."""
        if self._order is None:
            self._order = list(nx.lexicographical_topological_sort(self._g))
        return list(self._order)

    def nodes_of(self, cls: type[N]) -> list[N]:
        return [r for r in self if isinstance(r, cls)]

    def choice_nodes(self) -> list[Node]:
        """Unrelaxed choices (op, input, repeat, value)."""
        return [r for r in self if isinstance(r, CHOICE_KINDS)]

    def relaxed_nodes(self) -> list[Node]:
        """Relaxed choices (mixtures over candidates or inputs)."""
        return [r for r in self if isinstance(r, RELAXED_KINDS)]

    def __str__(self) -> str:
        from nasc.ir.printer import print_graph

        return print_graph(self)
