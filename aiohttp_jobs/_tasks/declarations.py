"""Scheduled task declarations: the ``Tasks`` registry and its decorators.

Declarations are checked at import time, so a typo in a cron string or a time
zone fails when the module loads, not at three in the morning. The runtime that
fires them lives in :mod:`.runtime`; it runs a snapshot of the registry, and the
registry refuses new declarations while one of its runtimes is running (they
would never fire).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Any, TypeVar, overload

from .._checks import check_flag, check_instance, check_name
from .._core.clock import Clock, check_clock
from .._core.priority import Priority, parse_priority
from .._core.scheduler import Scheduler
from .._errors import ConfigError, ConfigTypeError, TaskDefinitionError
from ..stores._url import from_url
from ..stores.base import JSON, TaskStore
from .options import (
    RESERVED,
    Declared,
    ExecutionMode,
    FailureMode,
    Fixture,
    Middleware,
    Misfire,
    Overlap,
    Task,
    TaskFunc,
    build_schedule,
    check_count,
    check_params,
    check_seconds,
)
from .runtime import TaskRuntime, run_tasks
from .schedules import Schedule
from .zones import parse_timezone

_F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "ExecutionMode",
    "FailureMode",
    "Misfire",
    "Overlap",
    "Task",
    "TaskFunc",
    "Tasks",
]


class Tasks:
    """A registry of scheduled tasks, fixtures and middlewares.

    Declare it at module level, decorate functions, and hand it to
    ``aiohttp_jobs.setup(app, tasks=tasks)``.

    *store* is where schedules and runs live: a
    :class:`~aiohttp_jobs.stores.TaskStore` or a URL for
    :func:`aiohttp_jobs.stores.from_url` (``"memory://"``,
    ``"sqlite:///jobs.db"``, ``"redis://host:6379/0"``). Without one, each
    runtime starts with a fresh in-memory store. Instances of an application
    that share a store (SQLite file, Redis) share its schedule: each occurrence
    runs once among them.
    """

    def __init__(
        self,
        *,
        store: TaskStore | str | None = None,
        concurrency_limit: int | None = None,
        batch_size: int = 100,
        owner: str | None = None,
    ) -> None:
        if concurrency_limit is not None:
            check_count(concurrency_limit, "concurrency_limit", 1)
        # None: each runtime starts with a fresh in-memory store, so a registry
        # declared at module level serves several apps (tests) independently.
        if isinstance(store, str):
            store = from_url(store)
        elif store is not None and not isinstance(store, TaskStore):
            raise ConfigTypeError(
                "store must be a TaskStore or a store URL (memory://, "
                f"sqlite:///..., redis://...), got {store!r} ({type(store).__name__})"
            )
        self.store: TaskStore | None = store
        self.concurrency_limit = concurrency_limit
        self.batch_size = check_count(batch_size, "batch_size", 1)
        self.owner = check_name("owner", owner, optional=True)
        self._tasks: dict[str, Task] = {}
        self._fixtures: dict[str, Fixture] = {}
        self._middlewares: list[Middleware] = []
        self._running = 0  # runtimes started and not stopped

    def __repr__(self) -> str:
        return f"<Tasks tasks={len(self._tasks)} fixtures={len(self._fixtures)}>"

    def _check_not_running(self, what: str) -> None:
        if self._running:
            raise TaskDefinitionError(
                f"{what} is declared after the task runtime started, so it would "
                "never run: declare tasks, fixtures and middlewares at import "
                "time, before the application starts (for work known only at "
                "run time, declare a @tasks.dynamic_task() and call "
                "schedule_task())"
            )

    @property
    def tasks(self) -> Mapping[str, Task]:
        return self._tasks

    @property
    def fixtures(self) -> Mapping[str, Fixture]:
        return self._fixtures

    @property
    def middlewares(self) -> tuple[Middleware, ...]:
        return tuple(self._middlewares)

    def __getitem__(self, name: str) -> Task:
        return self._tasks[name]

    # -- declarations ---------------------------------------------------------------

    def task(
        self,
        *,
        name: str | None = None,
        schedule: str | None = None,
        interval: float | timedelta | None = None,
        keyword: str | None = None,
        timezone: str | tzinfo | None = None,
        start_at: datetime | float | None = None,
        end_at: datetime | float | None = None,
        enabled: bool = True,
        execution_mode: ExecutionMode = ExecutionMode.AT_LEAST_ONCE,
        failure_mode: FailureMode = FailureMode.NONE,
        lease_duration: float | timedelta = 60.0,
        heartbeat: float | timedelta | None = None,
        retries: int = 0,
        retry_backoff: float | timedelta = 1.0,
        retry_backoff_max: float | timedelta = 300.0,
        overlap: Overlap = Overlap.SKIP,
        max_overlap: int = 1,
        queue_limit: int = 100,
        misfire: Misfire = Misfire.RUN_ONCE,
        misfire_limit: int = 100,
        priority: Priority | int | str = Priority.NORMAL,
        **params: JSON,
    ) -> Callable[[_F], _F]:
        """Declare a task fired by a cron ``schedule``, an ``interval`` or ``keyword``.

        Extra keyword arguments become ``context.params`` (JSON-serialisable).
        """
        return self._declare(
            locals(), dynamic=False, schedule_args=(schedule, interval, keyword)
        )

    def dynamic_task(
        self,
        *,
        name: str | None = None,
        timezone: str | tzinfo | None = None,
        enabled: bool = True,
        execution_mode: ExecutionMode = ExecutionMode.AT_LEAST_ONCE,
        failure_mode: FailureMode = FailureMode.NONE,
        lease_duration: float | timedelta = 60.0,
        heartbeat: float | timedelta | None = None,
        retries: int = 0,
        retry_backoff: float | timedelta = 1.0,
        retry_backoff_max: float | timedelta = 300.0,
        overlap: Overlap = Overlap.SKIP,
        max_overlap: int = 1,
        queue_limit: int = 100,
        misfire: Misfire = Misfire.RUN_ONCE,
        misfire_limit: int = 100,
        priority: Priority | int | str = Priority.NORMAL,
        **params: JSON,
    ) -> Callable[[_F], _F]:
        """Declare a task whose instances are scheduled at run time.

        Use ``runtime.schedule_task(func, "instance", schedule=... | interval=... |
        execute_at=..., **params)``.
        """
        return self._declare(locals(), dynamic=True, schedule_args=(None, None, None))

    def _declare(
        self,
        args: dict[str, Any],
        *,
        dynamic: bool,
        schedule_args: tuple[str | None, float | timedelta | None, str | None],
    ) -> Callable[[_F], _F]:
        schedule, interval, keyword = schedule_args
        name = check_name("name", args["name"], optional=True)
        enabled = check_flag("enabled", args["enabled"])
        where = f"task {name!r}" if name else "task"
        try:
            tz = None if args["timezone"] is None else parse_timezone(args["timezone"])
        except ConfigError as exc:
            raise TaskDefinitionError(f"{where}: {exc}") from None
        sched: Schedule | None = None
        if not dynamic:
            if keyword is not None:
                if not isinstance(keyword, str) or not keyword:
                    raise TaskDefinitionError(
                        f"{where}: keyword must be a non-empty string"
                    )
                if schedule is not None or interval is not None:
                    raise TaskDefinitionError(
                        f"{where}: a keyword-fired task takes no schedule= or interval="
                    )
            else:
                sched = build_schedule(
                    where,
                    schedule=schedule,
                    interval=interval,
                    execute_at=None,
                    timezone=tz,
                    start_at=args["start_at"],
                    end_at=args["end_at"],
                )
        params = check_params(args["params"], where)
        execution_mode = args["execution_mode"]
        if not isinstance(execution_mode, ExecutionMode):
            raise TaskDefinitionError(
                f"{where}: execution_mode must be an ExecutionMode"
            )
        retries = check_count(args["retries"], f"{where}: retries", 0)
        if execution_mode is ExecutionMode.AT_MOST_ONCE and retries:
            raise TaskDefinitionError(
                f"{where}: retries need execution_mode=AT_LEAST_ONCE (an at-most-once "
                "run is never repeated)"
            )
        for option, kind in (
            ("failure_mode", FailureMode),
            ("overlap", Overlap),
            ("misfire", Misfire),
        ):
            if not isinstance(args[option], kind):
                raise TaskDefinitionError(
                    f"{where}: {option} must be a {kind.__name__}"
                )
        heartbeat = args["heartbeat"]
        lease = check_seconds(args["lease_duration"], f"{where}: lease_duration")
        beat = (
            None
            if heartbeat is None
            else check_seconds(heartbeat, f"{where}: heartbeat")
        )
        if beat is not None and beat >= lease:
            raise TaskDefinitionError(
                f"{where}: heartbeat ({beat:g}s) must be shorter than lease_duration "
                f"({lease:g}s), or the lease expires between beats"
            )

        self._check_not_running(where)

        def decorator(func: _F) -> _F:
            task_name = name or getattr(func, "__name__", None)
            if not task_name or not isinstance(task_name, str):
                raise TaskDefinitionError("a task needs a name: pass name=")
            self._check_not_running(f"task {task_name!r}")
            if not inspect.iscoroutinefunction(func):
                raise TaskDefinitionError(
                    f"task {task_name!r}: {func!r} is not an async function; declare "
                    "it with 'async def' (run blocking code with "
                    "scheduler.spawn_in_thread inside it)"
                )
            if ":" in task_name:
                raise TaskDefinitionError(
                    f"task name {task_name!r} must not contain ':' (it separates "
                    "dynamic instances)"
                )
            if task_name in self._tasks:
                raise TaskDefinitionError(
                    f"task name {task_name!r} is already declared; when several "
                    "decorators share one function, give each an explicit name="
                )
            self._tasks[task_name] = Task(
                name=task_name,
                func=func,
                schedule=sched,
                keyword=keyword,
                dynamic=dynamic,
                params=params,
                enabled=enabled,
                timezone=tz,
                execution_mode=execution_mode,
                failure_mode=args["failure_mode"],
                lease_duration=lease,
                heartbeat=beat,
                retries=retries,
                retry_backoff=check_seconds(
                    args["retry_backoff"], "retry_backoff", zero=True
                ),
                retry_backoff_max=check_seconds(
                    args["retry_backoff_max"], "retry_backoff_max", zero=True
                ),
                overlap=args["overlap"],
                max_overlap=check_count(
                    args["max_overlap"], f"{where}: max_overlap", 1
                ),
                queue_limit=check_count(
                    args["queue_limit"], f"{where}: queue_limit", 1
                ),
                misfire=args["misfire"],
                misfire_limit=check_count(
                    args["misfire_limit"], f"{where}: misfire_limit", 1
                ),
                priority=parse_priority(args["priority"]),
            )
            return func

        return decorator

    @overload
    def fixture(self, func: _F, /) -> _F: ...
    @overload
    def fixture(
        self, func: None = None, /, *, name: str | None = None
    ) -> Callable[[_F], _F]: ...

    def fixture(
        self, func: _F | None = None, /, *, name: str | None = None
    ) -> _F | Callable[[_F], _F]:
        """Declare an async generator ``fixture(app)`` whose value tasks receive.

        Set up in declaration order before the first run; torn down in reverse
        order after the last run. Tasks read it as ``context.<name>``.
        """

        check_name("name", name, optional=True)

        def decorator(fn: _F) -> _F:
            fixture_name = name or str(getattr(fn, "__name__", ""))
            self._check_not_running(f"fixture {fixture_name!r}")
            if not inspect.isasyncgenfunction(fn):
                raise TaskDefinitionError(
                    f"fixture {fixture_name!r}: {fn!r} must be an async generator "
                    "function (async def with a single yield)"
                )
            if not fixture_name.isidentifier():
                raise TaskDefinitionError(
                    f"fixture name {fixture_name!r} must be a Python identifier"
                )
            if fixture_name in RESERVED or fixture_name.startswith("_"):
                raise TaskDefinitionError(
                    f"fixture name {fixture_name!r} clashes with a context attribute; "
                    "pass another name="
                )
            if fixture_name in self._fixtures:
                raise TaskDefinitionError(
                    f"fixture name {fixture_name!r} is already declared; pass name="
                )
            self._fixtures[fixture_name] = fn
            return fn

        return decorator(func) if func is not None else decorator

    def middleware(self, func: _F) -> _F:
        """Declare ``async def mw(context, call_next)`` wrapping every run.

        Middlewares run in declaration order, the first one outermost.
        """
        if not inspect.iscoroutinefunction(func):
            raise TaskDefinitionError(f"middleware {func!r} must be an async function")
        self._check_not_running(f"middleware {func!r}")
        self._middlewares.append(func)
        return func

    def include(self, other: Tasks) -> None:
        """Add the tasks, fixtures and middlewares declared on *other* to this one.

        Lets feature modules declare their own module-level registry and an
        application combine them (names must stay unique).
        """
        if not isinstance(other, Tasks):
            raise ConfigTypeError(
                f"include() takes another Tasks registry, got {other!r} "
                f"({type(other).__name__})"
            )
        self._check_not_running(f"{other!r} (included)")
        for name in other._tasks:
            if name in self._tasks and self._tasks[name] is not other._tasks[name]:
                raise TaskDefinitionError(
                    f"task name {name!r} is declared in both registries"
                )
        for name in other._fixtures:
            if (
                name in self._fixtures
                and self._fixtures[name] is not other._fixtures[name]
            ):
                raise TaskDefinitionError(
                    f"fixture name {name!r} is declared in both registries"
                )
        self._tasks.update(other._tasks)
        self._fixtures.update(other._fixtures)
        self._middlewares.extend(
            m for m in other._middlewares if m not in self._middlewares
        )

    # -- running --------------------------------------------------------------------

    def runtime(
        self, *, app: object, scheduler: Scheduler, clock: Clock | None = None
    ) -> contextlib.AbstractAsyncContextManager[TaskRuntime]:
        """Open the store, set up fixtures, start firing; yield the
        :class:`TaskRuntime`.

        On exit: stop firing, wait for the runs in flight, tear fixtures down,
        close the store. While it runs, this registry refuses new declarations.
        """
        check_instance("scheduler", scheduler, Scheduler, "an aiohttp_jobs.Scheduler")
        check_clock("clock", clock)
        return self._run(app=app, scheduler=scheduler, clock=clock)

    @contextlib.asynccontextmanager
    async def _run(
        self, *, app: object, scheduler: Scheduler, clock: Clock | None
    ) -> AsyncIterator[TaskRuntime]:
        declared = Declared(
            tasks=MappingProxyType(dict(self._tasks)),
            fixtures=MappingProxyType(dict(self._fixtures)),
            middlewares=tuple(self._middlewares),
            store=self.store,
            concurrency_limit=self.concurrency_limit,
            batch_size=self.batch_size,
            owner=self.owner,
        )
        self._running += 1
        try:
            async with run_tasks(
                declared, app=app, scheduler=scheduler, clock=clock
            ) as runtime:
                yield runtime
        finally:
            self._running -= 1
