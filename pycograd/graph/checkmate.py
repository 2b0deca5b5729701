"""Checkmate's rematerialization MILP (Jain et al., 2020), solved by ``scipy.optimize.milp``.

The schedule has one *stage* per node, in graph order: stage ``t`` computes node ``t`` for
the first time, and before it may recompute any earlier node. The decisions are 0/1:
``R[t, i]`` (node ``i`` runs in stage ``t``; ``R[t, t] = 1``), ``S[t, i]`` (value ``i`` is
resident when stage ``t`` starts) and ``FREE[t, i, k]`` (value ``i`` is freed right after
node ``k`` runs in stage ``t``: allowed only when ``i`` is ``k`` or one of its inputs, no
later node of the stage reads it and it is not resident for the next stage). A node runs
only when its inputs are resident or ran earlier in the stage; a value is resident for the
next stage only if it was resident or ran in this one; outputs are resident at the end.
Memory while node ``k`` runs in stage ``t`` is what the stage started with, plus what ran
up to ``k``, less what was freed before ``k``; it stays within the budget. The objective
is the time of the recomputations. Unlike the one-level model in ``remat``, a value may be
rebuilt from other rebuilt values, any number of times, so this is the exact optimum of
recompute-only plans (spills are not in Checkmate's formulation).

``solve`` returns the events ``remat._schedule`` would make (``("node", t, frees)`` and
``("run", i, frees)``), decoded from ``R`` and ``S`` alone: each value is freed after its
last reader in a stage unless resident for the next, never later than the MILP frees it,
so the schedule's peak (recomputed exactly from the events) is at most the MILP's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def solve(size: Sequence[int], reads: Sequence[Sequence[int]], outputs: set[int],
          run_s: Sequence[float], budget: int, time_limit: float
          ) -> list[tuple[str, int, list[int]]] | None:
    """The events of the cheapest recompute-only schedule whose peak (bytes of live
    values) is within ``budget``, or None when the solver finds none in ``time_limit``."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix

    n = len(size)
    users: list[list[int]] = [[] for _ in range(n)]
    for k in range(n):
        for i in reads[k]:
            users[i].append(k)
    last_user = [max(u) if u else -1 for u in users]
    lo_b: list[float] = []
    hi_b: list[float] = []
    cost: list[float] = []

    def new(c: float = 0.0, lo: float = 0.0, hi: float = 1.0) -> int:
        cost.append(c)
        lo_b.append(lo)
        hi_b.append(hi)
        return len(cost) - 1

    R: dict[tuple[int, int], int] = {}
    S: dict[tuple[int, int], int] = {}
    for t in range(n):
        for i in range(t + 1):
            if i == t:
                R[t, i] = new(0.0, 1.0, 1.0)
            elif last_user[i] >= t or i in outputs:  # only worth remaking if read later
                R[t, i] = new(float(run_s[i]))
    for t in range(1, n + 1):
        for i in range(t):
            if i in outputs or last_user[i] >= t:
                S[t, i] = new(0.0, 1.0 if t == n else 0.0, 1.0)
    rows: list[dict[int, float]] = []
    rlo: list[float] = []
    rhi: list[float] = []

    def add(row: dict[int, float], lo: float, hi: float) -> None:
        rows.append(row)
        rlo.append(lo)
        rhi.append(hi)

    for (t, k), r in R.items():  # inputs present: R[t,k] <= R[t,i] + S[t,i]
        for i in reads[k]:
            row = {r: 1.0}
            if (t, i) in R:
                row[R[t, i]] = row.get(R[t, i], 0.0) - 1.0
            if (t, i) in S:
                row[S[t, i]] = -1.0
            add(row, -np.inf, 0.0)
    for (t1, i), s in S.items():  # resident only if it was, or ran: S[t+1,i] <= S[t,i] + R[t,i]
        row = {s: 1.0}
        if (t1 - 1, i) in S:
            row[S[t1 - 1, i]] = -1.0
        if (t1 - 1, i) in R:
            row[R[t1 - 1, i]] = row.get(R[t1 - 1, i], 0.0) - 1.0
        add(row, -np.inf, 0.0)
    free: dict[tuple[int, int, int], int] = {}
    for (t, k), r in R.items():
        for i in {*reads[k], k}:
            f = free[t, i, k] = new()
            add({f: 1.0, r: -1.0}, -np.inf, 0.0)
            if (t + 1, i) in S:
                add({f: 1.0, S[t + 1, i]: 1.0}, -np.inf, 1.0)
            for j in users[i]:
                if k < j <= t and (t, j) in R:
                    add({f: 1.0, R[t, j]: 1.0}, -np.inf, 1.0)
    scale = float(max(size) or 1)
    for t in range(n):  # memory while node k runs in stage t
        base = {S[t, i]: size[i] / scale for i in range(t) if (t, i) in S}
        running = dict(base)
        for k in range(t + 1):
            if (t, k) not in R:
                continue
            running[R[t, k]] = running.get(R[t, k], 0.0) + size[k] / scale
            add(dict(running), -np.inf, budget / scale)
            for i in {*reads[k], k}:
                f = free[t, i, k]
                running[f] = running.get(f, 0.0) - size[i] / scale
    data, ri, ci = [], [], []
    for r, row in enumerate(rows):
        for c, v in row.items():
            if v:
                ri.append(r)
                ci.append(c)
                data.append(v)
    a = csr_matrix((data, (ri, ci)), shape=(len(rows), len(cost)))
    res = milp(np.array(cost), constraints=LinearConstraint(a, np.array(rlo), np.array(rhi)),
               integrality=np.ones(len(cost)), bounds=Bounds(np.array(lo_b), np.array(hi_b)),
               options={"time_limit": time_limit})
    if res.x is None:
        return None
    x = res.x > 0.5
    return _events(n, reads, outputs,
                   [[k for k in range(t + 1) if (t, k) in R and x[R[t, k]]] for t in range(n)],
                   [{i for i in range(t) if (t, i) in S and x[S[t, i]]} for t in range(n + 1)])


def _events(n: int, reads: Sequence[Sequence[int]], outputs: set[int],
            ran: list[list[int]], resident: list[set[int]]) -> list[tuple[str, int, list[int]]]:
    """The events of stages ``ran`` (nodes run per stage, in order), freeing each value
    after its last reader in the stage unless ``resident`` for the next stage."""
    events: list[tuple[str, int, list[int]]] = []
    for t in range(n):
        keep = resident[t + 1] | (outputs if t == n - 1 else set())
        live = set(resident[t])
        for pos, k in enumerate(ran[t]):
            live.add(k)
            later = {i for j in ran[t][pos + 1:] for i in reads[j]}
            frees = sorted(i for i in live if i not in keep and i not in later)
            live.difference_update(frees)
            events.append(("node" if k == t else "run", k, frees))
    return events


__all__ = ["solve"]
