"""``plan_remat`` and ``eval_scheduled``: run a graph within a memory budget by keeping,
recomputing or spilling each activation.

The model. Nodes run in the graph's order. An *activation* is a node's output; graph
inputs and constants belong to the caller and are not counted. An activation is

- *kept*: live from the node that makes it to its last use (or to the end, for an
  output), and, when an activation its reader makes is recomputed, until that
  recomputation has run (``_held_for``);
- *recomputed*: live until its first use, then made again when a later step needs it
  by running its producer again, first remaking (recursively) whatever the producer reads
  that is dropped, back to the nearest kept ancestors; each value so remade lives until
  its last use and is freed after it (``_schedule``), so it is remade once for the window
  of its later uses, and a run of dropped values on a chain is remade once from its
  checkpoint: sqrt(N) memory for about one extra forward pass on an N-layer chain;
- *spilled*: written to a file in a temporary directory when it is made (an array on a
  device: copied to host memory instead; ``spill.SpillStore``), live until its first use,
  read back (to its device) for each later use and dropped after.

Memory at a step is the bytes of the activations live then, the peak its maximum (a
view is charged like a copy, so the model never undercounts). The cost of a plan is the
time it adds: recomputation at the flop rate (or, for an elementwise node, the memory
bandwidth, whichever is slower), spills at the rate of the spill store's own round trip
(to disk, or for a device to host memory), all measured once per process
(``machine_rates``, ``device_rates``). ``plan_remat`` solves this model exactly with a
mixed-integer program (``scipy.optimize.milp``, Checkmate's idea of 0/1 decisions under a
per-step memory constraint, here one decision per activation, recomputing only from
kept inputs) for graphs of up to ``MILP_NODES`` nodes, and with a greedy heuristic beyond;
either way it also tries multi-level plans (sqrt(N) checkpointing swept over segment
sizes, ``_deep_plans``) when the one-level plan does not fit, and on graphs of up to
``DEEP_NODES`` nodes when they may be cheaper. ``method="checkmate"`` adds Checkmate's own
formulation (``checkmate.py``: per-stage compute/resident/free decisions, recomputation any
number of levels deep, no spills) under the time limit. ``eval_scheduled`` runs the very
schedule the planner costed, freeing and spilling as planned, to the very values the graph
computes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import numpy as np

from pycograd.backends.arrays.registry import NUMPY, resolve
from pycograd.core.errors import ArgumentError, PycogradError
from pycograd.core.pytree import tree_unflatten
from pycograd.core.trace import apply_impl
from pycograd.graph import checkmate
from pycograd.graph.cost import node_bytes, node_flops
from pycograd.graph.ir import Graph, Value
from pycograd.graph.spill import SpillStore, transfer_rate

KEEP, RECOMPUTE, SPILL = "keep", "recompute", "spill"
MILP_NODES = 300
DEEP_NODES = 2000


def reserve(n: int) -> int:
    """Bytes held back from a budget for ``eval_scheduled``'s own bookkeeping (its dicts
    and lists, numpy's small objects) on a graph of ``n`` nodes."""
    return 128 * 1024 + 256 * n


class RematInfeasibleError(PycogradError, ValueError):
    """No plan meets the budget; ``smallest`` is the least budget (bytes) the planner can
    meet.

    Examples:
        >>> from pycograd.graph.remat import RematInfeasibleError
        >>> str(RematInfeasibleError("budget too small", smallest=1024))
        'budget too small'
    """

    def __init__(self, message: str, smallest: int = 0):
        super().__init__(message)
        self.smallest = smallest


_RATES: dict[str, float] = {}


def _median_time(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return max(median(times), 1e-9)


def _probe_bytes(spill_bytes: int | None) -> int:
    """The size the spill rate is measured at: ``spill_bytes`` rounded up to a power of
    two between 64 KiB and 16 MiB (8 MiB when not given)."""
    if spill_bytes is None:
        return 8 * 2 ** 20
    return 1 << int(min(max(int(spill_bytes), 2 ** 16), 2 ** 24) - 1).bit_length()


def machine_rates(spill_bytes: int | None = None) -> dict[str, float]:
    """``{"flops": per second, "memory": bytes per second, "bandwidth": bytes per
    second}``, measured once per process, each the median of a few rounds: a float64
    matmul; an elementwise add of 8 MiB arrays into a fresh one (what an elementwise node
    costs, its page faults included); and a round trip through the very store
    ``eval_scheduled`` spills to (``spill.transfer_rate``), of an array sized like the
    activations to spill (``spill_bytes``, rounded to a power of two and measured once per
    size; ``plan_remat`` passes its graph's)."""
    if "flops" not in _RATES:
        a = np.ones((512, 512))
        a @ a
        _RATES["flops"] = 2 * 512 ** 3 / _median_time(lambda: a @ a, 5)
        b = np.ones(2 ** 20)
        _RATES["memory"] = 3 * b.nbytes / _median_time(lambda: b + b, 5)
    size = _probe_bytes(spill_bytes)
    key = f"bandwidth@{size}"
    if key not in _RATES:
        _RATES[key] = transfer_rate(size)
    return {"flops": _RATES["flops"], "memory": _RATES["memory"], "bandwidth": _RATES[key]}


def device_rates(device: Any, spill_bytes: int | None = None) -> dict[str, float]:
    """``machine_rates()`` with ``"bandwidth"`` the rate of a spill on ``device`` (a
    ``Device`` or its name): there a spill is a download to host memory and an upload
    back, measured once per device and size through the same store ``eval_scheduled``
    uses."""
    dev = resolve(device)
    rates = machine_rates(spill_bytes)
    if dev is not NUMPY:
        size = _probe_bytes(spill_bytes)
        key = f"bandwidth:{dev.name}@{size}"
        if key not in _RATES:
            _RATES[key] = transfer_rate(size, device=dev)
        rates["bandwidth"] = _RATES[key]
    return rates


@dataclass
class _Problem:
    """The graph seen by the planner: per activation (node index ``i``) its bytes, use
    steps, and the activations its producer reads."""

    graph: Graph
    size: list[int]
    uses: list[list[int]]          # sorted steps that read activation i (n: the return)
    reads: list[list[int]]         # activations node i reads
    flop_s: list[float]            # seconds to run node i
    io_s: list[float]              # seconds to write or read activation i
    n: int


def _problem(graph: Graph, rates: dict[str, float]) -> _Problem:
    where = {node.out.id: i for i, node in enumerate(graph.nodes)}
    n = len(graph.nodes)
    uses: list[list[int]] = [[] for _ in range(n)]
    reads: list[list[int]] = []
    size = []
    for i, node in enumerate(graph.nodes):
        mine = sorted({where[v.id] for v in node.inputs if v.id in where})
        reads.append(mine)
        for j in mine:
            uses[j].append(i)
        nb = int(node.out.nbytes)
        if node.prim.name in ("getitem", "broadcast_to", "reshape", "transpose"):
            nb = max([nb] + [int(v.nbytes) for v in node.inputs])  # a view holds its base
        size.append(nb)
    for o in graph.outputs:
        if o.id in where:
            uses[where[o.id]].append(n)
    memory = rates.get("memory", np.inf)  # a structural op (no flops) costs nothing
    flop_s = [max(fl / rates["flops"], float(node_bytes(node)) / memory) if fl else 0.0
              for fl, node in ((float(node_flops(node)), node) for node in graph.nodes)]
    io_s = [s / rates["bandwidth"] for s in size]
    return _Problem(graph, size, [sorted(set(u)) for u in uses], reads, flop_s, io_s, n)


def _spill_size(graph: Graph) -> int | None:
    """The median bytes of the activations read more than once (those a plan may spill):
    the size ``machine_rates`` measures the spill rate at."""
    where = {node.out.id: i for i, node in enumerate(graph.nodes)}
    reads = [0] * len(graph.nodes)
    for node in graph.nodes:
        for v in {v.id: v for v in node.inputs if v.id in where}.values():
            reads[where[v.id]] += 1
    sizes = [int(node.out.nbytes) for node, k in zip(graph.nodes, reads) if k > 1]
    return int(median(sizes)) if sizes else None


def _extent(p: _Problem) -> list[int]:
    """The last use of each activation (the end, for an output)."""
    return [max(u) if u else i for i, u in enumerate(p.uses)]


def _held_for(p: _Problem, i: int, ext: list[int]) -> list[tuple[int, int, int]]:
    """``(j, a, b)``: activation ``j``, which ``i``'s producer reads, must stay live over
    steps ``[a, b]`` past its own last use when ``i`` is recomputed (at its second use)."""
    later = [u for u in p.uses[i][1:] if u < p.n]
    if not later:
        return []
    return [(j, ext[j] + 1, later[0]) for j in p.reads[i] if ext[j] < later[0]]


def _options(p: _Problem, allow_spill: bool) -> list[tuple[str, ...]]:
    """The decisions open to each activation: recompute only when it is used after its
    first use and its producer reads no activation (or only kept ones, checked by the
    solvers); an activation with a single use gains nothing from either."""
    out = []
    for i in range(p.n):
        if p.n in p.uses[i] or len(p.uses[i]) < 2:  # an output, or nothing to gain
            out.append((KEEP,))
            continue
        opts = [KEEP, RECOMPUTE]
        if allow_spill:
            opts.append(SPILL)
        out.append(tuple(opts))
    return out


def _live_steps(p: _Problem, i: int, how: str, ext: list[int]) -> list[tuple[int, int]]:
    """Step ranges ``[a, b]`` where activation ``i`` is live under decision ``how``."""
    if how == KEEP:
        return [(i, min(ext[i], p.n - 1))]
    u = p.uses[i]
    later = [j for j in u[1:] if j < p.n]
    if how == RECOMPUTE:  # remade once, for the window of its later uses
        return [(i, u[0])] + ([(later[0], later[-1])] if later else [])
    return [(i, u[0])] + [(j, j) for j in later]


def _cost(p: _Problem, i: int, how: str) -> float:
    later = len([j for j in p.uses[i][1:] if j < p.n])
    if how == RECOMPUTE:
        return min(later, 1) * p.flop_s[i]
    if how == SPILL:
        return (1 + later) * p.io_s[i]
    return 0.0


def _profile(p: _Problem, decisions: list[str], ext: list[int]) -> np.ndarray:
    mem = np.zeros(p.n + 1, dtype=np.int64)
    for i, how in enumerate(decisions):
        for a, b in _live_steps(p, i, how, ext):
            mem[a] += p.size[i]
            mem[b + 1] -= p.size[i]
        if how == RECOMPUTE:
            for j, a, b in _held_for(p, i, ext):
                mem[a] += p.size[j]
                mem[b + 1] -= p.size[j]
    return np.cumsum(mem[:-1])


def _consistent(p: _Problem, decisions: list[str]) -> bool:
    return all(decisions[i] != RECOMPUTE or all(decisions[j] == KEEP for j in p.reads[i])
               for i in range(p.n))


def _solve_milp(p: _Problem, budget: int | None, options: list, ext: list[int],
                time_limit: float) -> tuple[list[str], float, int] | None:
    """Exact under the model: min cost s.t. the peak <= budget; with ``budget=None``,
    the least peak. Returns (decisions, cost, peak) or None if infeasible."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import lil_matrix

    var: list[tuple[int, str]] = [(i, how) for i in range(p.n) for how in options[i]]
    index = {v: k for k, v in enumerate(var)}
    nv = len(var) + (1 if budget is None else 0)
    c = np.zeros(nv)
    for k, (i, how) in enumerate(var):
        c[k] = _cost(p, i, how)
    if budget is None:
        c[:] = 0
        c[-1] = 1.0
    rows: list[tuple[dict[int, float], float, float]] = []
    for i in range(p.n):  # one decision each
        rows.append(({index[(i, h)]: 1.0 for h in options[i]}, 1.0, 1.0))
    for i in range(p.n):  # recompute reads kept activations only
        if (i, RECOMPUTE) in index:
            for j in p.reads[i]:
                rows.append(({index[(i, RECOMPUTE)]: 1.0, index[(j, KEEP)]: -1.0}, -np.inf, 0.0))
    steps: list[dict[int, float]] = [{} for _ in range(p.n)]
    for k, (i, how) in enumerate(var):
        spans = [(i, a, b) for a, b in _live_steps(p, i, how, ext)]
        if how == RECOMPUTE:  # what it reads stays live for it (kept: see the rows above)
            spans += _held_for(p, i, ext)
        for j, a, b in spans:
            for t in range(a, b + 1):
                steps[t][k] = steps[t].get(k, 0.0) + p.size[j]
    scale = float(max(p.size) or 1)
    for t in range(p.n):
        row = {k: v / scale for k, v in steps[t].items()}
        if budget is None:
            row[nv - 1] = -1.0
            rows.append((row, -np.inf, 0.0))
        else:
            rows.append((row, -np.inf, budget / scale))
    a = lil_matrix((len(rows), nv))
    lo, hi = np.empty(len(rows)), np.empty(len(rows))
    for r, (row, low, high) in enumerate(rows):
        for k, v in row.items():
            a[r, k] = v
        lo[r], hi[r] = low, high
    integrality = np.ones(nv)
    upper = np.ones(nv)
    if budget is None:
        integrality[-1] = 0
        upper[-1] = np.inf
    res = milp(c, constraints=LinearConstraint(a.tocsr(), lo, hi), integrality=integrality,
               bounds=Bounds(np.zeros(nv), upper), options={"time_limit": time_limit})
    if res.x is None:
        return None
    decisions = [KEEP] * p.n
    for k, (i, how) in enumerate(var):
        if res.x[k] > 0.5:
            decisions[i] = how
    peak = int(_profile(p, decisions, ext).max(initial=0))
    return decisions, sum(_cost(p, i, h) for i, h in enumerate(decisions)), peak


def _greedy(p: _Problem, budget: int, options: list, ext: list[int]) -> list[str]:
    """Until the peak fits: at the peak step, demote the kept activations that are live
    there without being used there, least added time per byte freed first (recompute
    only where its producer's inputs are kept, and only for what it frees net of the
    inputs it holds). Stops when nothing at the peak can be demoted."""
    decisions = [KEEP] * p.n
    starts = np.arange(p.n)
    ends = np.array([min(e, p.n - 1) for e in ext])  # kept: live to its last use
    first = np.array([u[0] if u else i for i, u in enumerate(p.uses)])
    demotable = np.array([len(o) > 1 for o in options])
    mem = _profile(p, decisions, ext)
    while True:
        t = int(np.argmax(mem))
        if mem[t] <= budget:
            return decisions
        idx = np.nonzero(demotable & (starts < t) & (ends >= t) & (first < t))[0]
        scored = []
        for i in idx:
            if t in p.uses[i]:
                continue
            best = None
            for how in options[i][1:]:
                gain = p.size[i]
                if how == RECOMPUTE:
                    if not all(decisions[j] == KEEP for j in p.reads[i]):
                        continue
                    gain -= sum(p.size[j] for j, a, b in _held_for(p, i, ext) if a <= t <= b)
                if gain > 0:
                    score = _cost(p, i, how) / gain
                    if best is None or score < best[0]:
                        best = (score, how)
            if best is not None:
                scored.append((best[0], int(i), best[1]))
        if not scored:
            return decisions
        scored.sort()
        over, freed = mem[t] - budget, 0
        for _, i, how in scored:
            if how == RECOMPUTE and not all(decisions[j] == KEEP for j in p.reads[i]):
                continue
            before = mem[t]
            decisions[i] = how
            demotable[i] = False
            for a, b in _live_steps(p, i, KEEP, ext):
                mem[a:b + 1] -= p.size[i]
            for a, b in _live_steps(p, i, how, ext):
                mem[a:b + 1] += p.size[i]
            if how == RECOMPUTE:
                for j, a, b in _held_for(p, i, ext):
                    mem[a:b + 1] += p.size[j]
                    demotable[j] = False  # a recomputation reads it: it stays
            freed += before - mem[t]
            if freed >= over:
                break


@dataclass
class _Schedule:
    """What ``eval_scheduled`` does, event by event, for one set of decisions: ``events``
    is ``(kind, j, frees)`` with kind ``"node"`` (run node ``j`` in graph order, spilling
    its value if so planned), ``"run"`` (remake dropped value ``j``) or ``"load"`` (read
    spilled ``j`` back), after which the values ``frees`` are dropped. ``peak``/``cost``/
    ``runs`` are the model's numbers for exactly these events, so the planner and the
    executor cannot disagree."""

    events: list[tuple[str, int, list[int]]]
    peak: int
    cost: float
    runs: dict[int, int]


def _schedule(p: _Problem, decisions: list[str], ext: list[int]) -> _Schedule:
    """Multi-level recomputation. A dropped value needed at step ``t`` is read back (spill)
    or recomputed, first making, recursively, whatever its producer reads that is not live,
    back to the nearest kept (or spilled, or still live) ancestors; each value so
    recomputed stays live until its last use, one read back until its next use, at or
    after ``t`` (a value remade only for another remake is freed right after its last
    reader), so a run of dropped values on a chain is recomputed once, not once per use.
    A kept value stays live as long as a recomputation reads it. With every recomputed
    value's inputs kept this is exactly the one-level model of ``_profile`` (what the
    MILP optimises)."""
    n = p.n
    first = [u[0] if u else i for i, u in enumerate(p.uses)]
    before: list[list[tuple[str, int, int]]] = [[] for _ in range(n)]  # (kind, j, stop)
    until: dict[int, int] = {}
    kept_last = list(ext)
    runs: dict[int, int] = {}
    cost = 0.0

    def need(j0: int, t: int) -> None:  # depth-first, with a stack: chains are long
        nonlocal cost
        stack = [(j0, False)]
        while stack:
            j, expanded = stack.pop()
            how = decisions[j]
            if how == KEEP:
                kept_last[j] = max(kept_last[j], t)
                continue
            if t <= first[j] or until.get(j, -1) >= t:
                continue
            if how == RECOMPUTE and not expanded:  # its inputs first, then itself
                stack.append((j, True))
                stack.extend((r, False) for r in reversed(p.reads[j]))
                continue
            if how == SPILL:
                kind = "load"
                cost += p.io_s[j]
            else:
                kind = "run"
                runs[j] = runs.get(j, 0) + 1
                cost += p.flop_s[j]
            later = [u for u in p.uses[j] if t <= u < n]
            until[j] = (later[-1] if how == RECOMPUTE else later[0]) if later else t
            before[t].append((kind, j, until[j]))

    for t in range(n):
        for j in p.reads[t]:
            need(j, t)
    tick = []  # the event index of node t
    k = 0
    for t in range(n):
        k += len(before[t])
        tick.append(k)
        k += 1
    spans: list[tuple[int, int, int]] = []  # (value, first event, last event)
    for t in range(n):
        base = tick[t] - len(before[t])
        for e, (_, j, stop) in enumerate(before[t]):
            if stop > t or j in p.reads[t]:
                end = tick[stop]
            else:  # remade only for later remakes of this step: freed after the last
                end = max(base + r for r, (kk, jj, _) in enumerate(before[t])
                          if r > e and kk == "run" and j in p.reads[jj])
            spans.append((j, base + e, end))
    outputs = {i for i in range(n) if n in p.uses[i]}
    for i, how in enumerate(decisions):
        if how == SPILL:
            cost += p.io_s[i]
        end = n - 1 if i in outputs else (min(kept_last[i], n - 1) if how == KEEP else first[i])
        spans.append((i, tick[i], tick[end] + (1 if i in outputs else 0)))
    frees: list[list[int]] = [[] for _ in range(k + 1)]
    mem = np.zeros(k + 2, dtype=np.int64)
    for j, a, b in spans:
        mem[a] += p.size[j]
        mem[b + 1] -= p.size[j]
        frees[b].append(j)
    events: list[tuple[str, int, list[int]]] = []
    for t in range(n):
        events += [(kind, j, frees[tick[t] - len(before[t]) + e])
                   for e, (kind, j, _) in enumerate(before[t])]
        events.append(("node", t, frees[tick[t]]))
    peak = int(np.cumsum(mem[:-1]).max(initial=0))
    return _Schedule(events, peak, cost, runs)


def _from_events(p: _Problem, events: list[tuple[str, int, list[int]]]) -> _Schedule:
    """The ``_Schedule`` of given events (Checkmate's): its peak counted as the executor
    holds values (a value remade while still live is held twice while it runs), its cost
    the remakes' time."""
    live: set[int] = set()
    mem = peak = 0
    cost = 0.0
    runs: dict[int, int] = {}
    for kind, j, frees in events:
        mem += p.size[j]
        peak = max(peak, mem)
        if j in live:
            mem -= p.size[j]
        live.add(j)
        if kind == "run":
            runs[j] = runs.get(j, 0) + 1
            cost += p.flop_s[j]
        for i in frees:
            live.discard(i)
            mem -= p.size[i]
    return _Schedule(events, peak, cost, runs)


def _deep_plans(p: _Problem, ext: list[int],
                allow_spill: bool) -> list[tuple[list[str], _Schedule]]:
    """Chen et al.'s sqrt(N) checkpointing, generalised to a DAG in graph order. The
    values worth dropping are those idle for at least ``gap`` steps between their first
    and second use (a forward activation that backward reads again); walking them, one is
    kept (a checkpoint) whenever the bytes dropped since the last one would pass ``b``.
    Values with a shorter gap (backward's own) are kept; those used once are dropped (they
    are remade only when a later recomputation reads them). ``b``, ``gap`` and whether
    the checkpoints are kept or spilled are swept; returns each distinct plan with its
    schedule."""
    idle = [u[1] - u[0] if len(u) >= 2 and u[-1] < p.n else 0 for u in p.uses]
    multi = [i for i in range(p.n) if idle[i] > 0]
    if not multi:
        return []
    sizes = sorted({p.size[i] for i in multi})
    total = sum(p.size[i] for i in multi)
    small = p.n <= MILP_NODES  # a finer sweep where the MILP's time dwarfs it anyway
    bounds = sorted(set(np.geomspace(max(sizes[0], 1), max(total, 1),
                                     24 if small else 10).astype(np.int64)))
    out, seen = [], set()
    gaps = sorted({2, max(2, p.n // 32), max(2, p.n // 8)}) if small else [max(2, p.n // 16)]
    for mark, gap, b in itertools.product((KEEP, SPILL) if allow_spill else (KEEP,), gaps,
                                          bounds):
        decisions = [KEEP if p.n in p.uses[i] or idle[i] else RECOMPUTE for i in range(p.n)]
        acc = 0
        for i in multi:
            if idle[i] < gap:
                continue
            decisions[i] = RECOMPUTE
            if acc + p.size[i] > b:
                acc = 0
            else:
                acc += p.size[i]
                continue
            decisions[i] = mark
        key = tuple(decisions)
        if key in seen:
            continue
        seen.add(key)
        s = _schedule(p, decisions, ext)
        for i in range(p.n):  # dropped but never remade: the same as kept
            if decisions[i] == RECOMPUTE and i not in s.runs:
                decisions[i] = KEEP
        out.append((decisions, s))
    return out


@dataclass
class RematPlan:
    """A plan for ``graph``: ``decisions[value id]`` is ``"keep"``, ``"recompute"`` or
    ``"spill"``; ``peak`` (bytes) and ``cost`` (seconds added) are the model's;
    ``recomputes[value id]`` how many extra times its node runs; ``method`` ``"milp"``
    or ``"heuristic"``.

    Examples:
        >>> import numpy as np
        >>> from pycograd.graph import capture, grad_graph
        >>> from pycograd.graph.remat import eval_scheduled, plan_remat
        >>> g = grad_graph(capture(lambda x: np.sum(np.tanh(np.tanh(x))), np.ones(1000)))
        >>> plan = plan_remat(g, budget=10 ** 9)
        >>> value, (dx,) = eval_scheduled(plan, np.ones(1000))
        >>> dx.shape
        (1000,)
    """

    graph: Graph
    budget: int
    decisions: dict[int, str]
    peak: int
    cost: float
    method: str
    recomputes: dict[int, int] = field(default_factory=dict)
    plain_peak: int = 0
    schedule: _Schedule | None = field(default=None, repr=False)  # made by plan_remat

    def counts(self) -> dict[str, int]:
        out = {KEEP: 0, RECOMPUTE: 0, SPILL: 0}
        for how in self.decisions.values():
            out[how] += 1
        return out

    def colour(self, node: Any) -> str | None:
        """Fill colour of a node in ``graph.to_dot(highlight=plan.colour)``."""
        return {KEEP: "#c8e6c9", RECOMPUTE: "#ffe0b2", SPILL: "#bbdefb"}.get(
            self.decisions.get(node.out.id, ""))


def plan_remat(graph: Graph, budget: int, *, method: str = "auto", spill: bool = True,
               time_limit: float = 10.0, rates: dict[str, float] | None = None,
               device: Any = None) -> RematPlan:
    """Decide, per activation of ``graph`` (a value+grad graph from ``grad_graph``), to
    keep, recompute or spill it so that the peak memory of ``eval_scheduled`` stays within
    ``budget`` bytes at the least added time (see the module docstring for the model).

    ``method``: ``"milp"`` (exact, ``scipy.optimize.milp`` with ``time_limit`` seconds),
    ``"heuristic"`` (greedy, linear passes), or ``"auto"``: the MILP up to ``MILP_NODES``
    nodes; each of them recomputes only from kept values, and is compared with multi-level
    plans (segments recomputed from a kept or spilled checkpoint, the sqrt(N) scheme),
    the cheaper feasible one chosen. ``"checkmate"`` is ``"auto"`` plus Checkmate's MILP
    (``checkmate.solve``: the exact optimum of recompute-only schedules, any number of
    levels deep, within ``time_limit``), the cheapest of them chosen; it grows with the
    square of the nodes, so it is asked for, not the default (its budgets below the
    others' reach are not in ``RematInfeasibleError.smallest``). ``spill=False`` keeps
    everything in memory.
    ``rates`` overrides the measured ``{"flops", "memory", "bandwidth"}``
    (``machine_rates``); ``device`` (a name such as ``"cupy"``) says the graph will run on
    that device, where a spill goes to host memory: its measured transfer rate prices
    spills instead of the disk's (``device_rates``). ``reserve(n)`` bytes of
    the budget are held back for the executor's own bookkeeping. Raises
    ``RematInfeasibleError`` naming the smallest budget the planner can meet.

    Examples:
        >>> import numpy as np
        >>> from pycograd.graph import capture, grad_graph
        >>> from pycograd.graph.remat import plan_remat
        >>> g = grad_graph(capture(lambda x: np.sum(np.sin(np.sin(x))), np.ones(10 ** 5)))
        >>> plan = plan_remat(g, budget=10 ** 9)
        >>> plan.peak <= plan.budget, plan.counts()["recompute"]
        (True, 0)
    """
    if rates is None:
        rates = machine_rates(_spill_size(graph)) if device is None else \
            device_rates(device, _spill_size(graph))
    p = _problem(graph, rates)
    ext = _extent(p)
    options = _options(p, spill)
    held = reserve(p.n)
    room = int(budget) - held
    plain = int(_profile(p, [KEEP] * p.n, ext).max(initial=0)) + held
    if method not in ("auto", "milp", "heuristic", "checkmate"):
        raise ArgumentError(f"plan_remat: method={method!r}; use 'auto', 'milp', "
                            "'heuristic' or 'checkmate'")
    use_milp = method == "milp" or (method in ("auto", "checkmate") and p.n <= MILP_NODES)
    found: tuple[list[str], _Schedule] | None = None
    least = None
    if use_milp:
        solved = _solve_milp(p, room, options, ext, time_limit) if room >= 0 else None
        if solved is None:
            bound = _solve_milp(p, None, options, ext, time_limit)
            least = (bound[2] if bound is not None else plain - held)
        else:
            found = (solved[0], _schedule(p, solved[0], ext))
    else:
        greedy = _greedy(p, room, options, ext)
        s = _schedule(p, greedy, ext)
        if s.peak <= room:
            found = (greedy, s)
        else:
            least = s.peak
    # Multi-level recomputation (segments of dropped values remade from a kept ancestor),
    # which the one-level MILP and greedy cannot express: tried when they fail, and, on
    # graphs of up to DEEP_NODES nodes, also when it may be cheaper.
    if found is None or p.n <= DEEP_NODES:
        for decisions, s in _deep_plans(p, ext, spill):
            if s.peak <= room and (found is None or s.cost < found[1].cost - 1e-12):
                found = (decisions, s)
            if least is not None:
                least = min(least, s.peak)
    won = "milp" if use_milp else "heuristic"
    if method == "checkmate" and room >= 0:  # Checkmate's recompute-only optimum competes
        events = checkmate.solve(p.size, p.reads, {i for i in range(p.n) if p.n in p.uses[i]},
                                 p.flop_s, room, time_limit)
        if events is not None:
            s = _from_events(p, events)
            if s.peak <= room and (found is None or s.cost < found[1].cost - 1e-12):
                found = ([RECOMPUTE if i in s.runs else KEEP for i in range(p.n)], s)
                won = "checkmate"
    if found is None:
        assert least is not None
        what = "feasible budget" if use_milp else "budget the heuristic meets"
        raise RematInfeasibleError(
            f"plan_remat: no plan fits {int(budget)} bytes; the smallest {what} is "
            f"{least + held} bytes", least + held)
    decisions, s = found
    recomputes = {graph.nodes[i].out.id: k for i, k in s.runs.items()}
    return RematPlan(graph, int(budget),
                     {graph.nodes[i].out.id: h for i, h in enumerate(decisions)}, s.peak + held,
                     s.cost, won, recomputes, plain, s)


def eval_scheduled(plan: RematPlan, *args: Any,
                   on_eval: Callable[[int], None] | None = None) -> Any:
    """Run ``plan.graph`` on ``args`` (structured as at capture) as planned: each
    activation freed when the plan drops it, recomputed or read back from where it was
    spilled right before a later use: a file in a temporary directory removed afterwards,
    or, for an array on a device (``DeviceArray``, run inside a ``device(...)`` block),
    host memory, uploaded back to its device on load. Returns what ``plan.graph(*args)``
    returns, to the bit. ``on_eval(i)`` is called each time node ``i`` runs (a test's
    counter).

    Examples:
        >>> import numpy as np
        >>> from pycograd import RematInfeasibleError, capture, eval_scheduled, grad_graph
        >>> from pycograd import plan_remat
        >>> g = grad_graph(capture(lambda x: np.sum(np.exp(np.sin(x))), np.zeros(10 ** 5)))
        >>> try:
        ...     plan = plan_remat(g, budget=10 ** 6)
        ... except RematInfeasibleError as e:
        ...     plan = plan_remat(g, budget=e.smallest)       # the least budget it can meet
        >>> value, (dx,) = eval_scheduled(plan, np.zeros(10 ** 5))
        >>> float(value), float(dx[0])
        (100000.0, 1.0)
    """
    graph = plan.graph
    how = [plan.decisions[node.out.id] for node in graph.nodes]
    s = plan.schedule
    if s is None:
        p = _problem(graph, {"flops": 1.0, "bandwidth": 1.0})
        s = _schedule(p, how, _extent(p))
    leaves = graph.flat_inputs(args)
    env: dict[int, Any] = {v.id: x for v, x in zip(graph.inputs, leaves)}
    for c in graph.consts:
        env[c.id] = c.const
    ids = [node.out.id for node in graph.nodes]
    nodes = graph.nodes

    with SpillStore() as store:
        try:
            for kind, i, frees in s.events:
                if kind == "load":
                    env[ids[i]] = store.get(i)
                else:
                    node = nodes[i]
                    if on_eval is not None:
                        on_eval(i)
                    env[ids[i]] = apply_impl(node.prim, [env[a.id] if isinstance(a, Value) else a
                                                         for a in node.args], node.params)
                    if kind == "node" and how[i] == SPILL:
                        store.put(i, env[ids[i]])
                for j in frees:
                    env.pop(ids[j], None)
            out = [env[o.id] for o in graph.outputs]
        finally:
            env.clear()
    return tree_unflatten(graph.out_tree, out)


__all__ = ["RematInfeasibleError", "RematPlan", "device_rates", "eval_scheduled",
           "machine_rates", "plan_remat"]
