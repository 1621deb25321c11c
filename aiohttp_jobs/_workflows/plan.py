"""The order a workflow's steps may run in, computed on step indexes.

A pure graph module: it knows nothing of steps, only of indexes ``0..count-1``
and of which index requires which. :class:`~aiohttp_jobs.Workflow` turns its steps
into indexes, asks for a :class:`Plan`, and names the steps in its errors.
"""

from __future__ import annotations

import itertools

__all__ = ["Plan", "make_plan"]


class Plan:
    """A validated graph: a topological order, and who waits on whom.

    The dependents of index ``i`` are ``targets[first[i]:first[i + 1]]``: two flat
    lists rather than one list per step, so that a big running workflow gives the
    garbage collector few objects to scan. ``order`` is ``None`` when the graph
    has a cycle; ``cycle`` then names one, as indexes read "a -> b" (b requires
    a), the first index repeated at the end.
    """

    __slots__ = ("cycle", "first", "forever", "indegree", "order", "roots", "targets")

    def __init__(
        self,
        first: list[int],
        targets: list[int],
        indegree: list[int],
        roots: list[int],
        order: list[int] | None,
        forever: int,
    ) -> None:
        self.first = first
        self.targets = targets
        self.indegree = indegree  #: how many requirements each index has
        self.roots = roots  #: the indexes that require nothing
        self.order = order
        self.forever = forever  #: how many of the indexes are forever steps
        self.cycle: list[int] = []

    def dependents(self, index: int) -> list[int]:
        """The indexes that require *index*."""
        return self.targets[self.first[index] : self.first[index + 1]]


def make_plan(count: int, edges: list[tuple[int, list[int]]], forever: int) -> Plan:
    """The plan of *count* indexes where each ``(i, required)`` of *edges* says
    that index ``i`` requires every index in *required* (indexes without
    requirements are left out). Linear in indexes + requirements (Kahn's
    algorithm)."""
    outdegree = [0] * (count + 1)
    indegree = [0] * count
    for i, required in edges:
        indegree[i] += len(required)
        for r in required:
            outdegree[r] += 1
    first = list(itertools.accumulate(outdegree, initial=0))[:-1]
    if not edges:  # no requirements at all: any order is topological
        everything = list(range(count))
        return Plan(first, [], indegree, everything, everything.copy(), forever)
    roots = [i for i in range(count) if not indegree[i]]
    cursor = first.copy()
    targets = [0] * first[-1]
    for i, required in edges:
        for r in required:
            slot = cursor[r]
            targets[slot] = i
            cursor[r] = slot + 1
    remaining = indegree.copy()
    order = roots.copy()
    for i in order:  # grows while iterating
        for k in range(first[i], first[i + 1]):
            index = targets[k]
            remaining[index] -= 1
            if remaining[index] == 0:
                order.append(index)
    if len(order) == count:
        return Plan(first, targets, indegree, roots, order, forever)
    plan = Plan(first, targets, indegree, roots, None, forever)
    plan.cycle = _find_cycle(edges, remaining)
    return plan


def _find_cycle(edges: list[tuple[int, list[int]]], remaining: list[int]) -> list[int]:
    """A cycle among the indexes Kahn's algorithm left over (those whose
    *remaining* count is not zero: each requires another of them), read
    "a -> b" (b requires a), the first index repeated at the end."""
    required = dict(edges)
    index = next(i for i, left in enumerate(remaining) if left)
    seen: dict[int, int] = {}
    path: list[int] = []
    while index not in seen:
        seen[index] = len(path)
        path.append(index)
        index = next(r for r in required[index] if remaining[r])
    cycle = path[seen[index] :]
    cycle.reverse()
    return [*cycle, cycle[0]]
