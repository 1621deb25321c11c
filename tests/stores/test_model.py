"""Model-based test: each backend and the memory store (the reference) go
through the same random operations and clock jumps and must answer alike.

Hypothesis drives a state machine (derandomized: the same examples on every
run, so CI is reproducible); each example gets a fresh store of the backend and
a fresh reference ``MemoryStore``. Times are whole seconds, so stores that keep
integer milliseconds compare exactly. Fencing tokens are compared by their
rule (they grow per key), not by value: stores may count them differently.
Shrinking is off, so that a failure is reported within the test timeout: the
report lists the whole (reproducible) sequence of steps.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from aiohttp_jobs.stores import (
    Claim,
    Cursor,
    InstanceInfo,
    Lease,
    MemoryStore,
    RunLogEntry,
    TaskRecord,
    TaskStore,
)

from .conftest import Factory

_T = TypeVar("_T")

KEYS = st.sampled_from(["a", "b", "c"])
LATER = st.sampled_from([0, 1, 5, 10])
T0 = 1_700_000_000.0
SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _claim_view(claim: Claim) -> tuple[Any, ...]:
    """What must match between two stores' claims (not token nor fence)."""
    return (
        claim.run_id,
        claim.record,
        claim.fire_at,
        claim.attempt,
        claim.expires_at,
        claim.from_cursor,
        claim.payload,
        claim.cancelled,
    )


class StoreModel(RuleBasedStateMachine):
    """One example: a store of the backend under test against the reference."""

    factory: Factory
    tmp_path: Path
    _examples = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.ref: TaskStore = MemoryStore()
        directory = self.tmp_path / f"example-{next(self._examples)}"
        directory.mkdir()
        self.sut: TaskStore = self.run(self.factory(directory))
        self.run(self.ref.open())
        self.run(self.sut.open())
        self.now = T0
        self.claims: list[tuple[Claim, Claim]] = []  # (reference, under test)
        self.stale: list[tuple[Claim, Claim]] = []  # lost or finished ones
        self.run_ids: set[str] = {"a@0"}
        self.fences: dict[str, int] = {}  # highest fence seen per key (under test)
        self.revisions = itertools.count(1)

    def run(self, awaitable: Awaitable[_T]) -> _T:
        async def call() -> _T:
            return await awaitable

        return self.runner.run(call())

    def both(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Call *method* on both stores: same result, or the same exception."""
        results = []
        for store in (self.ref, self.sut):
            try:
                results.append(
                    ("ok", self.run(getattr(store, method)(*args, **kwargs)))
                )
            except Exception as exc:
                results.append(("error", type(exc)))
        (ref_kind, ref), (sut_kind, sut) = results
        assert ref_kind == sut_kind, (method, args, kwargs, results)
        return ref, sut

    def pick(self, data: st.DataObject) -> tuple[Claim, Claim]:
        """A claim: mostly one the reference still honours, sometimes a stale one."""
        live = st.sampled_from(self.claims)
        if not self.stale:
            return data.draw(live)
        return data.draw(live | st.sampled_from(self.stale[-3:]))

    def settle(self, pair: tuple[Claim, Claim], kept: bool) -> None:
        """Move a claim the reference no longer honours to the stale ones."""
        if not kept and pair in self.claims:
            self.claims.remove(pair)
            self.stale.append(pair)

    def teardown(self) -> None:
        try:
            self.same_logs_and_instances()
            self.run(self.sut.close())
            self.run(self.ref.close())
        finally:
            self.runner.close()

    # -- operations ---------------------------------------------------------------

    @initialize(max_running=st.integers(1, 2))
    def something_due(self, max_running: int) -> None:
        """Start from records due now, so claims come early in every example."""
        for key, fire_in in (("a", 0), ("b", 0), ("c", 5)):
            record = TaskRecord(
                key=key,
                task=key,
                schedule={"interval": 10.0},
                fire_at=self.now + fire_in,
                max_running=max_running,
            )
            self.both("save", record)
        self.both("add_run", "a", fire_at=self.now, payload={"p": 0})

    @rule(
        key=KEYS,
        fire_in=st.sampled_from([-5, 0, 0, 1, 5, 20, None]),
        enabled=st.sampled_from([True, True, True, False]),
        max_running=st.integers(1, 2),
        new_revision=st.booleans(),
        params=st.sampled_from([{}, {"n": 1}, {"s": "x", "l": [1, 2]}]),
    )
    def save(
        self,
        key: str,
        fire_in: int | None,
        enabled: bool,
        max_running: int,
        new_revision: bool,
        params: dict[str, Any],
    ) -> None:
        current = self.run(self.ref.get(key))
        revision = current.revision if current is not None else 0
        if new_revision:
            revision = next(self.revisions)
        record = TaskRecord(
            key=key,
            task=key,
            schedule={"interval": 10.0},
            params=params,
            enabled=enabled,
            fire_at=None if fire_in is None else self.now + fire_in,
            max_running=max_running,
            revision=revision,
        )
        self.both("save", record)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        ref, sut = self.both("delete", key)
        assert ref == sut

    @rule(
        key=KEYS,
        due_in=st.sampled_from([-1, 0, 0, 5, 20]),
        payload=st.none() | st.just({"p": 1}),
    )
    def add_run(self, key: str, due_in: int, payload: dict[str, Any] | None) -> None:
        ref, sut = self.both("add_run", key, fire_at=self.now + due_in, payload=payload)
        assert ref == sut
        if isinstance(ref, str):
            self.run_ids.add(ref)

    @rule(lease=st.sampled_from([1, 5, 10, 30]))
    def acquire(self, lease: int) -> None:
        kwargs = {"now": self.now, "owner": "o", "lease_duration": lease, "limit": 20}
        ref, sut = self.both("acquire", **kwargs)
        ref = sorted(ref, key=lambda c: c.run_id)
        sut = sorted(sut, key=lambda c: c.run_id)
        assert [_claim_view(c) for c in ref] == [_claim_view(c) for c in sut]
        before = dict(self.fences)
        assert len({c.fence for c in sut}) == len(sut)
        for ref_claim, sut_claim in zip(ref, sut, strict=True):
            key = sut_claim.record.key
            assert sut_claim.fence > before.get(key, 0)  # rule 8
            self.fences[key] = max(sut_claim.fence, self.fences.get(key, 0))
            self.claims.append((ref_claim, sut_claim))
            self.run_ids.add(sut_claim.run_id)

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data(), extend_by=st.sampled_from([1, 5, 10, 30]))
    def extend(self, data: st.DataObject, extend_by: int) -> None:
        ref_claim, sut_claim = pair = self.pick(data)
        until = self.now + extend_by
        ref = self.run(self.ref.extend(ref_claim, until=until))
        sut = self.run(self.sut.extend(sut_claim, until=until))
        assert ref is sut and isinstance(sut, Lease)
        self.settle(pair, bool(ref))

    def _commit(self, data: st.DataObject, how: str, later: int, logged: bool) -> None:
        ref_claim, sut_claim = self.pick(data)
        kwargs: dict[str, Any] = {}
        if "cursor" in how:
            kwargs["cursor"] = Cursor(self.now + later, later % 3)
        if how == "retry":
            kwargs["retry_at"] = self.now + later
        if "keep" in how:
            kwargs["keep_lease"] = True
        if logged:
            kwargs["log"] = RunLogEntry(
                sut_claim.run_id, sut_claim.record.key, "o", sut_claim.attempt,
                "succeeded", self.now - 1, self.now,
            )  # fmt: skip
        ref = self.run(self.ref.commit(ref_claim, **kwargs))
        sut = self.run(self.sut.commit(sut_claim, **kwargs))
        assert ref is sut and isinstance(sut, Lease)
        self.settle((ref_claim, sut_claim), ref is Lease.HELD and "keep" in how)

    # One rule per kind of commit: each is chosen as often as any other step.

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data(), logged=st.booleans())
    def commit_finish(self, data: st.DataObject, logged: bool) -> None:
        self._commit(data, "finish", 0, logged)

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data(), later=LATER, logged=st.booleans(), keep=st.booleans())
    def commit_cursor(
        self, data: st.DataObject, later: int, logged: bool, keep: bool
    ) -> None:
        self._commit(data, "cursor+keep" if keep else "cursor", later, logged)

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data(), later=LATER, logged=st.booleans())
    def commit_retry(self, data: st.DataObject, later: int, logged: bool) -> None:
        self._commit(data, "retry", later, logged)

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data())
    def commit_keep(self, data: st.DataObject) -> None:
        self._commit(data, "keep", 0, False)

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data())
    def delete_with_claim(self, data: st.DataObject) -> None:
        ref_claim, sut_claim = self.pick(data)
        key = ref_claim.record.key
        ref = self.run(self.ref.delete(key, claim=ref_claim))
        sut = self.run(self.sut.delete(key, claim=sut_claim))
        assert ref == sut
        self.settle((ref_claim, sut_claim), False)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        run_id = data.draw(st.sampled_from(sorted(self.run_ids)))
        ref, sut = self.both("cancel", run_id, now=self.now)
        assert ref == sut

    @precondition(lambda self: bool(self.claims))
    @rule(data=st.data())
    def cancel_claimed(self, data: st.DataObject) -> None:
        ref_claim, _ = self.pick(data)
        ref, sut = self.both("cancel", ref_claim.run_id, now=self.now)
        assert ref == sut

    @rule(key=KEYS, outcome=st.sampled_from(["failed", "lost"]))
    def log_run(self, key: str, outcome: Any) -> None:
        entry = RunLogEntry(f"{key}@1", key, "o", 0, outcome, self.now, self.now, "E")
        self.both("log_run", entry)

    @rule(ident=st.sampled_from(["i1", "i2"]), ttl=st.sampled_from([1, 5, 10]))
    def register(self, ident: str, ttl: int) -> None:
        info = InstanceInfo(ident, "h", 1, "v", T0, self.now)
        self.both("register_instance", info, ttl=ttl)

    @rule(seconds=st.sampled_from([0, 1, 5, 10, 30, 60]))
    def jump(self, seconds: int) -> None:
        self.now += seconds

    # -- what both must agree on after every step -------------------------------

    @invariant()
    def same_state(self) -> None:
        ref, sut = self.both("records")
        assert ref == sut
        ref, sut = self.both("next_due")
        assert ref == sut
        ref, sut = self.both("leases", now=self.now)
        assert ref == sut

    @rule()
    def same_logs_and_instances(self) -> None:
        """Compared as a step (and at the end), not after every step: cheaper."""
        for key in ("a", "b", "c"):
            ref, sut = self.both("recent_runs", key)
            assert ref == sut
        ref, sut = self.both("instances", now=self.now)
        assert ref == sut


# Backends behind a network round trip (and a new connection per example) run
# fewer examples, so that each stays within a few seconds.
EXAMPLES = {"redis": 30, "redis-cluster": 20}


def test_the_store_answers_like_the_reference(
    backend: Factory, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    class Model(StoreModel):
        pass

    Model.factory = staticmethod(backend)  # type: ignore[assignment]
    Model.tmp_path = tmp_path
    callspec = getattr(request.node, "callspec", None)  # absent: not parametrized
    name = callspec.params.get("backend") if callspec is not None else None
    examples = EXAMPLES.get(name, SETTINGS.max_examples)
    run_state_machine_as_test(Model, settings=settings(SETTINGS, max_examples=examples))
