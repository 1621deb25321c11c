"""Prometheus metrics: jobs, priorities and limits, task runs, the store, the dashboard.

Needs the ``metrics`` extra (``pip install "aiohttp-jobs[metrics]"``);
``prometheus_client`` is imported when metrics are set up, never by
``import aiohttp_jobs``.

With aiohttp::

    aiohttp_jobs.setup(app)
    aiohttp_jobs.metrics.setup(app)              # a registry of its own
    app.router.add_get("/metrics", aiohttp_jobs.metrics.handler)

(the dashboard serves ``<prefix>/metrics`` by itself once metrics are set up).
Without aiohttp, :func:`instrument` a :class:`~aiohttp_jobs.Scheduler` and
scrape the registry it returns in :attr:`Metrics.registry`.

Cheap by design: a job's start and end only bump plain counters (no lock, no
``prometheus_client`` call); gauges and histograms are built when the registry
is scraped. docs/observability.md lists every series.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from aiohttp import web

from ._checks import check_callable, check_count, check_instance
from ._core.job import Job, JobState
from ._core.jobstats import JobStats
from ._core.priority import Priority
from ._core.scheduler import Scheduler
from ._errors import ConfigTypeError, MissingDependencyError, SetupError
from .stores.base import Claim, TaskStore
from .web._state import SCHEDULER_KEY, STATE_KEY, TASKS_KEY

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "METRICS_KEY",
    "Metrics",
    "dashboard_streams_changed",
    "handler",
    "instrument",
    "is_enabled",
    "setup",
]

logger = logging.getLogger("aiohttp_jobs.metrics")

#: Upper bounds (seconds) of the run-time, wait-time and store histograms.
DURATION_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
)
#: Upper bounds (seconds) of the task lateness histogram.
LATENESS_BUCKETS: Final = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 3600.0)
#: Upper bounds (seconds) of the store round-trip histogram.
STORE_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    5.0,
)

#: The store operations that are timed (and counted when they fail): every
#: coroutine method of the store contract but ``open`` and ``close``.
STORE_OPERATIONS: Final = tuple(
    name
    for name, member in vars(TaskStore).items()
    if inspect.iscoroutinefunction(member)
    and not name.startswith("_")
    and name not in ("open", "close")
)

_PRIORITY_LABELS: Final = {prio: prio.name.lower() for prio in Priority}
_STATES: Final = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
_MISSING = (
    'aiohttp_jobs.metrics needs prometheus-client: pip install "aiohttp-jobs[metrics]"'
)

JobLabel = Callable[[Job[Any]], str]


def _prometheus() -> Any:
    try:
        import prometheus_client.core
    except ImportError as exc:
        raise MissingDependencyError(_MISSING) from exc
    return prometheus_client.core


class _Histogram:
    """Bucket counts per label value, kept as plain lists (cheap to update)."""

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        # label -> [count per bucket (the last one: above every bound), sum]
        self.series: dict[str, list[float]] = {}

    def observe(self, label: str, value: float) -> None:
        row = self.series.get(label)
        if row is None:
            row = self.series[label] = [0.0] * (len(self.bounds) + 2)
        row[bisect_left(self.bounds, value)] += 1
        row[-1] += value

    def samples(self) -> Iterator[tuple[str, list[tuple[str, float]], float]]:
        for label, row in list(self.series.items()):
            yield label, _cumulative(self.bounds, row), row[-1]


def _cumulative(
    bounds: Sequence[float], counts: Sequence[float]
) -> list[tuple[str, float]]:
    """``(le, cumulative count)`` pairs of a histogram kept as counts per bucket."""
    buckets: list[tuple[str, float]] = []
    total = 0.0
    for bound, count in zip(bounds, counts, strict=False):
        total += count
        buckets.append((repr(float(bound)), total))
    buckets.append(("+Inf", total + counts[len(bounds)]))
    return buckets


#: Each family one collection yields, by its field of :class:`_Families`:
#: its kind, name, help and labels.
_FAMILY_SPECS: Final[dict[str, tuple[str, str, str, tuple[str, ...]]]] = {
    "started": (
        "counter",
        "aiohttp_jobs_jobs_started",
        "Jobs that started running, by job name.",
        ("name",),
    ),
    "finished": (
        "counter",
        "aiohttp_jobs_jobs_finished",
        "Jobs that reached a final state, by job name and state (succeeded, "
        "failed, cancelled).",
        ("name", "state"),
    ),
    "run": (
        "histogram",
        "aiohttp_jobs_job_run_seconds",
        "Seconds from a job's start to its end, by job name.",
        ("name",),
    ),
    "wait": (
        "histogram",
        "aiohttp_jobs_job_wait_seconds",
        "Seconds from a job's spawn to its start (waiting for a slot, and the delay"
        " of a delayed spawn), by priority.",
        ("priority",),
    ),
    "active": (
        "gauge",
        "aiohttp_jobs_jobs_active",
        "Jobs running now, by priority.",
        ("priority",),
    ),
    "pending": (
        "gauge",
        "aiohttp_jobs_jobs_pending",
        "Jobs waiting for a slot now, by priority.",
        ("priority",),
    ),
    "scheduled": (
        "gauge",
        "aiohttp_jobs_jobs_scheduled",
        "Jobs spawned with a delay that has not passed yet.",
        (),
    ),
    "capacity": (
        "gauge",
        "aiohttp_jobs_capacity",
        "Jobs that may run at once for a job of this priority (the limit plus "
        "reserves); absent without a limit, never for critical.",
        ("priority",),
    ),
    "pending_limit": (
        "gauge",
        "aiohttp_jobs_pending_limit",
        "Size of the pending list (0: unbounded).",
        (),
    ),
    "lateness": (
        "histogram",
        "aiohttp_jobs_task_lateness_seconds",
        "Seconds between a scheduled task occurrence's due time and its claim by "
        "this instance, by task.",
        ("task",),
    ),
    "takeovers": (
        "counter",
        "aiohttp_jobs_task_lease_takeovers",
        "Runs of this instance whose lease was lost (taken over by another runner "
        "after it expired, or the instance was unscheduled), by task.",
        ("task",),
    ),
    "store_errors": (
        "counter",
        "aiohttp_jobs_store_errors",
        "Task store calls that raised, by operation.",
        ("operation",),
    ),
    "store_time": (
        "histogram",
        "aiohttp_jobs_store_seconds",
        "Round-trip time of task store calls, by operation.",
        ("operation",),
    ),
    "streams": (
        "gauge",
        "aiohttp_jobs_dashboard_streams",
        "Dashboard event streams (server-sent events) open now.",
        (),
    ),
}


class _Families(NamedTuple):
    """The metric families one collection yields, in this order."""

    started: Any
    finished: Any
    run: Any
    wait: Any
    active: Any
    pending: Any
    scheduled: Any
    capacity: Any
    pending_limit: Any
    lateness: Any
    takeovers: Any
    store_errors: Any
    store_time: Any
    streams: Any


class Metrics:
    """The collector that :func:`setup` and :func:`instrument` register.

    It observes one scheduler (job starts and ends, through
    :meth:`Scheduler.add_observer`) and any number of task stores
    (:meth:`observe_store`), and builds every series at scrape time.
    Do not create it directly.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_names: int,
        job_label: JobLabel | None,
    ) -> None:
        self.registry = registry
        """The ``prometheus_client`` registry the series are registered in."""
        self._scheduler: Scheduler | None = None
        self._stats = JobStats(
            bounds=DURATION_BUCKETS, max_names=max_names, job_label=job_label
        )
        self._lateness = _Histogram(LATENESS_BUCKETS)
        self._store_time = _Histogram(STORE_BUCKETS)
        self._store_errors: dict[str, int] = {}
        self._takeovers: dict[str, int] = {}
        self._stores: list[TaskStore] = []
        self.streams = 0
        """Dashboard event streams open now (see :func:`dashboard_streams_changed`)."""

    def __repr__(self) -> str:
        return f"<Metrics {self._scheduler!r} stores={len(self._stores)}>"

    # -- what is observed ---------------------------------------------------------

    def observe(self, scheduler: Scheduler) -> None:
        """Count the jobs of *scheduler* from now on (one scheduler at a time)."""
        check_instance("scheduler", scheduler, Scheduler, "an aiohttp_jobs.Scheduler")
        if self._scheduler is not None:
            self._scheduler.remove_observer(self._stats)
        self._scheduler = scheduler
        scheduler.add_observer(self._stats)

    def observe_store(self, store: TaskStore) -> None:
        """Time every call the task runtime makes to *store* and count its
        errors, the lateness of the runs it hands out and the leases lost.

        The store's methods are wrapped on this instance (any backend); a store
        observed already is left as it is.
        """
        if not isinstance(store, TaskStore):
            raise ConfigTypeError(
                f"store must be an aiohttp_jobs.stores.TaskStore, got {store!r} "
                f"({type(store).__name__})"
            )
        if any(seen is store for seen in self._stores):
            return
        wrapped: dict[str, Callable[..., Any]] = {}
        for operation in STORE_OPERATIONS:
            original = getattr(store, operation, None)
            if original is not None:
                wrapped[operation] = self._timed(operation, original)
        try:
            for operation, timed in wrapped.items():
                setattr(store, operation, timed)
        except AttributeError:  # a store class with __slots__ and no __dict__
            logger.warning(
                "metrics: cannot time the calls to %r (its methods cannot be "
                "wrapped); no store metrics for it",
                store,
            )
            return
        self._stores.append(store)

    def _timed(self, operation: str, call: Callable[..., Any]) -> Callable[..., Any]:
        observe = self._store_time.observe
        errors = self._store_errors
        clock = time.perf_counter

        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                result = await call(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception:
                errors[operation] = errors.get(operation, 0) + 1
                raise
            finally:
                observe(operation, clock() - start)
            if operation == "acquire":
                self._claimed(result, kwargs.get("now"))
            elif not result and operation in ("extend", "commit"):
                # False, or Lease.LOST: the claim no longer held its lease.
                self._lost(args[0] if args else kwargs.get("claim"))
            return result

        timed.__name__ = timed.__qualname__ = operation
        return timed

    def _claimed(self, claims: list[Claim], now: float | None) -> None:
        if now is None:
            return
        for claim in claims:
            if claim.from_cursor:
                self._lateness.observe(claim.record.task, max(0.0, now - claim.fire_at))

    def _lost(self, claim: object) -> None:
        if isinstance(claim, Claim):
            task = claim.record.task
            self._takeovers[task] = self._takeovers.get(task, 0) + 1

    # -- the prometheus_client collector ------------------------------------------

    def describe(self) -> list[Metric]:
        """The series this collector yields (without samples)."""
        return list(self._families(with_samples=False))

    def collect(self) -> list[Metric]:
        """Every series, computed now."""
        return list(self._families(with_samples=True))

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        core = _prometheus()
        kinds = {
            "counter": core.CounterMetricFamily,
            "gauge": core.GaugeMetricFamily,
            "histogram": core.HistogramMetricFamily,
        }
        families = _Families(
            **{
                field: kinds[kind](name, doc, labels=list(labels))
                for field, (kind, name, doc, labels) in _FAMILY_SPECS.items()
            }
        )
        if with_samples:
            self._fill(families)
            families.streams.add_metric([], self.streams)
        yield from families

    def _fill(self, families: _Families) -> None:
        scheduler = self._scheduler
        stats = self._stats
        bounds = stats.bounds
        # Running jobs are counted now (not as they start: one call fewer per
        # job); once finished, they are in the rows instead.
        running: dict[str, int] = {}
        waits = [list(wait) for wait in stats.waits]
        if scheduler is not None:
            for job in scheduler:
                begun = job.started_at
                if begun is None or job.done:
                    continue
                label = stats.label(job)
                running[label] = running.get(label, 0) + 1
                wait = waits[job.priority]
                waited = max(0.0, begun - job.created_at)
                wait[bisect_left(bounds, waited)] += 1
                wait[-1] += waited
        rows = {label: list(row) for label, row in list(stats.rows.items())}
        for label in running.keys() - rows.keys():
            rows[label] = [0.0] * stats.row_size
        run_at, end = stats.run_at, stats.run_at + stats.buckets
        for label, row in rows.items():
            runs = row[run_at:end]
            families.started.add_metric([label], sum(runs) + running.get(label, 0))
            for index, state in enumerate(_STATES):
                if row[index]:
                    families.finished.add_metric([label, state.value], row[index])
            if any(runs):
                families.run.add_metric([label], _cumulative(bounds, runs), row[-1])
        for prio, wait in zip(Priority, waits, strict=True):
            if any(wait):
                families.wait.add_metric(
                    [_PRIORITY_LABELS[prio]], _cumulative(bounds, wait), wait[-1]
                )
        for family, hist in (
            (families.lateness, self._lateness),
            (families.store_time, self._store_time),
        ):
            for label, buckets, total in hist.samples():
                family.add_metric([label], buckets, total)
        for family, counts in (
            (families.takeovers, self._takeovers),
            (families.store_errors, self._store_errors),
        ):
            for label, count in list(counts.items()):
                family.add_metric([label], count)
        if scheduler is None:
            return
        for prio, (active_now, waiting) in scheduler.priority_counts().items():
            label = _PRIORITY_LABELS[prio]
            families.active.add_metric([label], active_now)
            if prio is not Priority.CRITICAL:
                families.pending.add_metric([label], waiting)
                cap = scheduler.capacity(prio)
                if cap is not None:
                    families.capacity.add_metric([label], cap)
        families.scheduled.add_metric([], scheduler.scheduled_count)
        families.pending_limit.add_metric([], scheduler.pending_limit)


def _new_metrics(
    registry: CollectorRegistry | None, max_names: int, job_label: JobLabel | None
) -> Metrics:
    core = _prometheus()
    check_count("max_names", max_names, minimum=1, maximum=1_000_000)
    check_callable("job_label", job_label, optional=True)
    if registry is None:
        registry = core.CollectorRegistry()
    else:
        check_instance(
            "registry", registry, core.CollectorRegistry, "a prometheus_client registry"
        )
    metrics = Metrics(registry, max_names=max_names, job_label=job_label)
    registry.register(metrics)
    return metrics


def instrument(
    scheduler: Scheduler,
    *,
    registry: CollectorRegistry | None = None,
    store: TaskStore | None = None,
    max_names: int = 200,
    job_label: JobLabel | None = None,
) -> Metrics:
    """Collect metrics of *scheduler* (and of *store*, a task store) into
    *registry* (default: a new ``CollectorRegistry`` of its own, in
    :attr:`Metrics.registry`); for schedulers used without aiohttp.

    Jobs are counted by name: the first *max_names* distinct names get a
    series each, later ones are counted under ``"_other"``. *job_label*
    (``job -> str``) replaces the name as the label, e.g. to fold many
    dynamic names into a few.
    """
    check_instance("scheduler", scheduler, Scheduler, "an aiohttp_jobs.Scheduler")
    metrics = _new_metrics(registry, max_names, job_label)
    metrics.observe(scheduler)
    if store is not None:
        metrics.observe_store(store)
    return metrics


METRICS_KEY: Final = web.AppKey("aiohttp_jobs.metrics", Metrics)
"""Where :func:`setup` keeps the application's :class:`Metrics`."""


def setup(
    app: web.Application,
    *,
    registry: CollectorRegistry | None = None,
    max_names: int = 200,
    job_label: JobLabel | None = None,
) -> Metrics:
    """Collect metrics for the application's scheduler, its task store and
    its dashboard into *registry* (default: a registry of its own; pass
    ``prometheus_client.REGISTRY`` to share the application's).

    Call it after :func:`aiohttp_jobs.setup` on the same (root) application,
    before it starts. Serve them with :func:`handler` (the dashboard mounts it
    at ``<prefix>/metrics``). *max_names* and *job_label* are those of
    :func:`instrument`.
    """
    check_instance("app", app, web.Application, "an aiohttp web.Application")
    if STATE_KEY not in app:
        raise SetupError(
            "aiohttp_jobs.metrics.setup(app) needs aiohttp_jobs.setup(app) first, "
            "on the same (root) application"
        )
    if METRICS_KEY in app:
        raise SetupError(
            "aiohttp_jobs.metrics.setup(app) was called twice for the same "
            "application: call it once"
        )
    metrics = _new_metrics(registry, max_names, job_label)
    app[METRICS_KEY] = metrics

    async def on_startup(app: web.Application) -> None:
        # Runs after the cleanup contexts (where the scheduler and the task
        # runtime start).
        scheduler = app.get(SCHEDULER_KEY)
        if scheduler is not None:
            metrics.observe(scheduler)
        runtime = app.get(TASKS_KEY)
        if runtime is not None:
            metrics.observe_store(runtime.store)

    app.on_startup.append(on_startup)
    return metrics


def is_enabled(app: web.Application) -> bool:
    """Whether :func:`setup` was called for *app*."""
    return METRICS_KEY in app


def dashboard_streams_changed(app: web.Application, open_streams: int) -> None:
    """Report how many dashboard event streams are open now (the dashboard
    calls it); does nothing when metrics are not set up for *app*."""
    metrics = app.get(METRICS_KEY)
    if metrics is not None:
        metrics.streams = check_count(
            "open_streams", open_streams, minimum=0, maximum=1 << 31
        )


async def handler(request: web.Request) -> web.Response:
    """Serve the metrics of the application (found through
    ``request.config_dict``, so sub-applications reach the root's) in the
    Prometheus text format, or OpenMetrics when the scraper asks for it."""
    metrics = request.config_dict.get(METRICS_KEY)
    if metrics is None:
        raise SetupError(
            "no metrics for this application: call aiohttp_jobs.metrics.setup(app)"
        )
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encoder(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": content_type})
