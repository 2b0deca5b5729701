"""``cost_report``: flops and bytes per node of a graph, and in total.

The model is deliberately simple and documented: a contraction (``matmul``, ``einsum``)
costs two flops per multiply-add; an elementwise op one flop per output element; a
reduction one per input element; structural ops (reshape, transpose, indexing,
broadcasting, casts) none. Bytes are what a node reads and writes: its array inputs and
its output. The remat planner and ``jit`` read the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pycograd.graph.ir import Graph, Node, Value

_FREE = {"reshape", "transpose", "broadcast_to", "getitem", "astype", "concatenate",
         "stop_gradient", "real", "imag", "conjugate"}


def _einsum_flops(spec: str, args: list[Value]) -> Any:
    ins, _, out = spec.partition("->")
    sizes: dict[str, Any] = {}
    for sub, v in zip(ins.split(","), args):
        for ch, d in zip(sub.replace("...", ""), v.shape[-len(sub.replace("...", "")):]
                         if sub else ()):
            sizes[ch] = d
    total = 1
    for d in sizes.values():
        total = total * d
    return 2 * total


def node_flops(node: Node) -> Any:
    """The flops of one node under the model above."""
    name = node.prim.name
    ins = node.inputs
    if name in _FREE:
        return 0
    if name == "matmul" and len(ins) == 2:
        k = ins[0].shape[-1] if ins[0].ndim else 1
        return 2 * node.out.size * k
    if name == "einsum":
        return _einsum_flops(node.params.get("spec", ""), ins)
    if node.prim.family == "reduction":
        return ins[0].size if ins else 0
    if node.prim.family == "elementwise":
        return node.out.size
    return max([node.out.size] + [v.size for v in ins])


def node_bytes(node: Node) -> Any:
    """Bytes read (array inputs) and written (the output) by one node."""
    total = node.out.nbytes
    for v in node.inputs:
        total = total + v.nbytes
    return total


@dataclass
class CostReport:
    """Per-node rows ``(value id, primitive, output type, flops, bytes)`` and totals;
    ``str()`` is a table."""

    rows: list[tuple[int, str, str, Any, Any]]
    flops: Any
    bytes: Any
    by_primitive: dict[str, tuple[int, Any, Any]] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{'value':>7}  {'op':<16}{'output':<22}{'flops':>14}{'bytes':>14}"]
        for vid, op, typ, fl, by in self.rows:
            lines.append(f"{'%' + str(vid):>7}  {op:<16}{typ:<22}{str(fl):>14}{str(by):>14}")
        lines.append(f"{'total':>7}  {len(self.rows):<16}{'':<22}{str(self.flops):>14}"
                     f"{str(self.bytes):>14}")
        return "\n".join(lines)


def cost_report(graph: Graph) -> CostReport:
    """Flops and bytes of each node of ``graph`` and in total (symbolic dimensions stay
    symbolic). See the module docstring for the model.

    Examples:
        >>> import numpy as np
        >>> from pycograd import capture, cost_report
        >>> r = cost_report(capture(lambda a, b: a @ b, np.ones((2, 3)), np.ones((3, 4))))
        >>> int(r.flops)                                    # 2 * 2 * 4 * 3
        48
    """
    rows = []
    flops: Any = 0
    nbytes: Any = 0
    by: dict[str, tuple[int, Any, Any]] = {}
    for n in graph.nodes:
        fl, b = node_flops(n), node_bytes(n)
        rows.append((n.out.id, n.prim.name, n.out.type, fl, b))
        flops, nbytes = flops + fl, nbytes + b
        c, f0, b0 = by.get(n.prim.name, (0, 0, 0))
        by[n.prim.name] = (c + 1, f0 + fl, b0 + b)
    return CostReport(rows, flops, nbytes, by)


__all__ = ["CostReport", "cost_report", "node_bytes", "node_flops"]
