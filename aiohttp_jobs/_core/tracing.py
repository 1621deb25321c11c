"""OpenTelemetry spans for background work: jobs, atomic handlers, shielded
work and task runs (the ``otel`` extra: ``pip install "aiohttp-jobs[otel]"``).

Tracing switches itself on when the application uses OpenTelemetry, that is
once ``opentelemetry.trace`` has been imported (by the application's own
setup, an SDK or an instrumentation). Until then nothing here imports it and
the only cost is one dictionary lookup per spawn; without the extra installed
there is nothing else to pay.

* A job spawned from a request (:func:`aiohttp_jobs.spawn`), an atomic
  handler's work and shielded work get a span ``job <name>``,
  ``atomic <handler>`` or ``shield <name>``, child of the span current where
  it was spawned (captured at spawn time: the request's span, when the server
  is instrumented), so a trace follows the request into its background work.
* A task run gets a span ``task <name>``, the root of a trace of its own
  (a run is caused by its schedule, not by whatever request was current in
  the runner), with the occurrence's run id, attempt and due time. A run
  added by ``fire()`` or ``run_now()`` also gets a *link* to the span current
  at that call: :func:`carry` puts its W3C ``traceparent`` in the run's
  payload (under :data:`LINK_KEY`), which the store keeps with the run, so the
  link reaches whichever instance runs it; :func:`unlink` takes it out again
  before the task sees its payload.

The spans come from the tracer ``aiohttp_jobs`` of the global tracer provider.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from types import CoroutineType
from typing import Any, Protocol, TypeVar

from .job import coroutine_in_use, running_job
from .logs import RunFields, enter_run

__all__ = [
    "LINK_KEY",
    "TRACER_NAME",
    "active",
    "capture",
    "carry",
    "close_unstarted",
    "observe_run",
    "span",
    "traced",
    "unlink",
    "wrap_work",
]

TRACER_NAME = "aiohttp_jobs"

LINK_KEY = "aiohttp_jobs.trace"
"""The payload key under which an added run carries the span that caused it:
``{"traceparent": ..., "tracestate": ... (if any), "cause": "fire" or
"run_now"}``. Reserved: ``fire()`` and ``run_now()`` refuse it from callers."""

_T = TypeVar("_T")
_C = TypeVar("_C", bound="RunContext")


def active() -> bool:
    """Whether to make spans: the application has imported OpenTelemetry."""
    return "opentelemetry.trace" in sys.modules


def capture() -> object | None:
    """The OpenTelemetry context current now (``None`` when inactive): the
    parent of a span started later, elsewhere."""
    if not active():
        return None
    from opentelemetry import context

    return context.get_current()


def span(name: str, attributes: dict[str, Any]) -> Any:
    """A context manager: a span *name*, current inside the block, child of
    the span current now (a no-op context manager when inactive)."""
    if not active():
        from contextlib import nullcontext

        return nullcontext()
    from opentelemetry import trace

    return trace.get_tracer(TRACER_NAME).start_as_current_span(
        name, attributes=attributes
    )


def traced(
    coro: Coroutine[Any, Any, _T],
    name: str,
    attributes: dict[str, Any],
    parent: object | None = None,
) -> Coroutine[Any, Any, _T]:
    """*coro* run inside a span *name* (child of *parent*, default: the span
    current now). The wrapper keeps *coro*'s name (a job's default name)."""
    if parent is None:
        parent = capture()
    wrapper: Any = _in_span(coro, name, attributes, parent)
    wrapper.__name__ = getattr(coro, "__name__", wrapper.__name__)
    wrapper.__qualname__ = getattr(coro, "__qualname__", wrapper.__qualname__)
    return wrapper  # type: ignore[no-any-return]


async def _in_span(
    coro: Coroutine[Any, Any, _T],
    name: str,
    attributes: dict[str, Any],
    parent: object | None,
) -> _T:
    from opentelemetry import trace

    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        name,
        context=parent,  # type: ignore[arg-type]
        attributes=attributes,
    ) as current:
        job = running_job()
        if job is not None:
            current.set_attribute("aiohttp_jobs.job.id", job.id)
            current.set_attribute("aiohttp_jobs.job.name", job.name)
        return await coro


def wrap_work(
    coro: object, kind: str, name: str | None, origin: str
) -> Coroutine[Any, Any, Any] | None:
    """*coro* in a span ``<kind> <name>`` (default name: its own), with
    ``aiohttp_jobs.origin`` (what spawned it, e.g. ``"POST /orders"``); ``None``
    when tracing is inactive or *coro* is not a fresh coroutine (then it is
    left alone, for the usual checks to judge). If the wrapper is refused
    before it starts, close *coro* with :func:`close_unstarted`."""
    if not active() or type(coro) is not CoroutineType:
        return None
    if inspect.getcoroutinestate(coro) != inspect.CORO_CREATED or (
        coroutine_in_use(coro)
    ):
        return None
    label = name if name is not None else coro.__qualname__
    return traced(
        coro,
        f"{kind} {label}",
        {"aiohttp_jobs.kind": kind, "aiohttp_jobs.origin": origin},
    )


def close_unstarted(coro: object) -> None:
    """Close *coro* if it never started (its wrapper was refused)."""
    if (
        type(coro) is CoroutineType
        and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED
    ):
        coro.close()


def carry(payload: dict[str, Any] | None, cause: str) -> dict[str, Any] | None:
    """*payload* of a run added now by *cause* (``"fire"``, ``"run_now"``),
    with the current span under :data:`LINK_KEY`; *payload* itself when
    tracing is inactive or no span is current."""
    if not active():
        return payload
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )

    if not trace.get_current_span().get_span_context().is_valid:
        return payload
    carrier: dict[str, Any] = {}
    TraceContextTextMapPropagator().inject(carrier)
    carrier["cause"] = cause
    return {**(payload or {}), LINK_KEY: carrier}


def unlink(
    payload: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, Mapping[str, Any] | None]:
    """``(payload, link)``: *payload* (which holds :data:`LINK_KEY`) as its
    caller gave it, and what :func:`carry` added (``None`` if it is not
    that). Needs no OpenTelemetry: an instance without tracing runs the
    task with the payload it was given too."""
    rest = {key: value for key, value in payload.items() if key != LINK_KEY}
    link = payload[LINK_KEY]
    if not isinstance(link, Mapping):
        return rest, None
    # run_now() without a payload queues none (fire() always queues one).
    return (None if not rest and link.get("cause") == "run_now" else rest), link


class RunContext(RunFields, Protocol):
    """What :func:`observe_run` reads from a task run's context."""

    @property
    def name(self) -> str: ...

    @property
    def fire_at(self) -> float: ...

    @property
    def task(self) -> Any: ...

    @property
    def _trace_link(self) -> Mapping[str, Any] | None:
        """What :func:`carry` put in the run's payload, if anything."""
        ...


def observe_run(
    call: Callable[[_C], Awaitable[object]],
) -> Callable[[_C], Awaitable[object]]:
    """Wrap a task's call chain: each run marks its job's log records with
    the run's fields and, when tracing is active, runs in a span
    ``task <name>``."""

    def run(ctx: _C) -> Awaitable[object]:
        task = ctx.task.name
        enter_run(task, ctx)
        if not active():
            return call(ctx)
        return _run_in_span(call, ctx, task)

    return run


async def _run_in_span(
    call: Callable[[_C], Awaitable[object]], ctx: _C, task: str
) -> object:
    from opentelemetry import context, trace

    attributes: dict[str, Any] = {
        "aiohttp_jobs.task.name": task,
        "aiohttp_jobs.task.key": ctx.name,
        "aiohttp_jobs.task.run_id": ctx.run_id,
        "aiohttp_jobs.task.attempt": ctx.attempt,
        "aiohttp_jobs.task.scheduled_at": datetime.fromtimestamp(
            ctx.fire_at, UTC
        ).isoformat(),
    }
    job = running_job()
    if job is not None:
        attributes["aiohttp_jobs.job.id"] = job.id
    link = ctx._trace_link
    links = None if link is None else _links(link, ctx, task)
    # A root span: the run is caused by its schedule (its run id is the same
    # on every instance and attempt), not by what was current in the runner;
    # a run added by fire() or run_now() links to the span of that call.
    with trace.get_tracer(TRACER_NAME).start_as_current_span(
        f"task {task}", context=context.Context(), attributes=attributes, links=links
    ):
        return await call(ctx)


def _links(link: Mapping[str, Any], ctx: RunContext, task: str) -> list[Any]:
    """A link to the span that *link* (from :func:`carry`) names; none if it
    names none (a payload written by hand)."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator,
    )

    carrier = {
        key: value
        for key in ("traceparent", "tracestate")
        if isinstance(value := link.get(key), str)
    }
    cause = TraceContextTextMapPropagator().extract(carrier)
    caused_by = trace.get_current_span(cause).get_span_context()
    if not caused_by.is_valid:
        return []
    attributes: dict[str, Any] = {
        "aiohttp_jobs.task.name": task,
        "aiohttp_jobs.task.run_id": ctx.run_id,
        "aiohttp_jobs.task.attempt": ctx.attempt,
    }
    how = link.get("cause")
    if isinstance(how, str):
        attributes["aiohttp_jobs.task.cause"] = how
    return [trace.Link(caused_by, attributes)]
