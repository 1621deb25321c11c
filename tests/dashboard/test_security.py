"""Safe by default: loopback only without an authorize hook, forwarded
requests refused, same-origin writes, security headers everywhere, and
refusals that tell nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

import aiohttp_jobs
from aiohttp_jobs import ConfigError, SetupError, dashboard
from aiohttp_jobs.dashboard._config import CONFIG_KEY
from aiohttp_jobs.dashboard._security import REFUSED, guard, is_loopback
from tests.dashboard.support import (
    SAME_ORIGIN,
    ClientFactory,
    finished,
    forever,
    make_app,
    returning,
    scheduler_of,
)


@pytest.mark.parametrize(
    ("peer", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("192.168.1.10", False),
        ("::ffff:10.0.0.1", False),
        ("", False),
        (None, False),
        ("not-an-ip", False),
    ],
)
def test_loopback_addresses(peer: str | None, loopback: bool) -> None:
    assert is_loopback(peer) is loopback


class _Transport:
    """A transport whose peer is the given address (as a real socket reports)."""

    def __init__(self, peer: object) -> None:
        self._peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._peer if name == "peername" else default


async def test_a_remote_peer_is_refused_without_an_authorize_hook() -> None:
    app = web.Application()
    sub = dashboard.setup(app)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="secret")

    for peer, status in ((("10.0.0.5", 4000), 403), (("127.0.0.1", 4000), 200)):
        request = make_mocked_request(
            "GET", "/jobs/", app=sub, transport=_Transport(peer)
        )
        assert request.config_dict[CONFIG_KEY] is sub[CONFIG_KEY]
        response = await guard(request, handler)
        assert response.status == status
    # A unix socket has no IP peer: refused too.
    request = make_mocked_request("GET", "/jobs/", app=sub, transport=_Transport(""))
    assert (await guard(request, handler)).status == 403


@pytest.mark.parametrize(
    "header",
    [
        ("Forwarded", "for=203.0.113.5"),
        ("X-Forwarded-For", "203.0.113.5"),
        ("X-Forwarded-Host", "example.com"),
        ("X-Forwarded-Proto", "https"),
        ("X-Real-IP", "203.0.113.5"),
    ],
)
async def test_forwarded_requests_are_refused_and_learn_nothing(
    aiohttp_client: ClientFactory, header: tuple[str, str]
) -> None:
    client = await aiohttp_client(make_app())
    job = await finished(scheduler_of(client), returning(1), "secret-job")
    headers = dict([header])
    answers = set()
    for path in [
        "/jobs/",
        "/jobs/jobs",
        f"/jobs/jobs/{job.id}",
        "/jobs/jobs/nonexistent-1",
        "/jobs/api/jobs",
        "/jobs/static/dashboard.js",
        "/jobs/no-such-page",
    ]:
        response = await client.get(path, headers=headers)
        answers.add((response.status, await response.text()))
        assert response.headers["Cache-Control"] == "no-store"
    assert answers == {(403, REFUSED)}
    response = await client.post(
        f"/jobs/api/jobs/{job.id}/cancel", headers={**headers, **SAME_ORIGIN}
    )
    assert response.status == 403


async def test_authorize_decides_per_action_sync_or_async(
    aiohttp_client: ClientFactory,
) -> None:
    asked: list[str] = []

    async def authorize(request: web.Request, action: str) -> bool:
        asked.append(action)
        await asyncio.sleep(0)
        return request.headers.get("X-User") == "admin" or action == "view"

    client = await aiohttp_client(make_app(authorize=authorize))
    job = await scheduler_of(client).spawn(forever(), "long")
    # With a hook, forwarded headers are the application's business.
    response = await client.get("/jobs/jobs", headers={"X-Forwarded-For": "1.2.3.4"})
    assert response.status == 200
    response = await client.post(f"/jobs/api/jobs/{job.id}/cancel", headers=SAME_ORIGIN)
    assert response.status == 403 and not job.done  # read-only for this user
    response = await client.post(
        f"/jobs/api/jobs/{job.id}/cancel", headers={**SAME_ORIGIN, "X-User": "admin"}
    )
    assert response.status == 200
    assert "view" in asked and "cancel" in asked
    audit = dashboard.audit_log(client.app)  # type: ignore[arg-type]
    assert [(e.action, e.outcome) for e in audit][:2] == [
        ("cancel", "ok"),
        ("cancel", "refused"),
    ]


async def test_a_sync_hook_and_a_failing_hook(aiohttp_client: ClientFactory) -> None:
    def never(request: web.Request, action: str) -> bool:
        return False

    client = await aiohttp_client(make_app(authorize=never))
    assert (await client.get("/jobs/")).status == 403

    def broken(request: web.Request, action: str) -> bool:
        raise RuntimeError("bug in the hook")

    client = await aiohttp_client(make_app(authorize=broken))
    assert (await client.get("/jobs/")).status == 403


async def test_only_true_allows(aiohttp_client: ClientFactory) -> None:
    def truthy(request: web.Request, action: str) -> Any:
        return "yes"  # not True: refused, so a typo never opens the dashboard

    client = await aiohttp_client(make_app(authorize=truthy))
    assert (await client.get("/jobs/")).status == 403


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Sec-Fetch-Site": "none"}, False),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://admin.example.com"}, True),
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "https://admin.example.com"}, True),  # trusted
        ({}, True),  # no browser: curl, scripts
    ],
)
async def test_writes_must_be_same_origin(
    aiohttp_client: ClientFactory, headers: dict[str, str], allowed: bool
) -> None:
    client = await aiohttp_client(
        make_app(trusted_origins=["https://admin.example.com"])
    )
    job = await scheduler_of(client).spawn(forever(), "long")
    response = await client.post(f"/jobs/api/jobs/{job.id}/cancel", headers=headers)
    assert (response.status == 200) is allowed
    assert job.done is allowed
    if not allowed:
        assert await response.text() == REFUSED
        entry = dashboard.audit_log(client.app)[0]  # type: ignore[arg-type]
        assert entry.outcome == "refused" and entry.detail == "cross-site request"
    else:
        await job.close()


async def test_origin_is_compared_with_the_host(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    job = await scheduler_of(client).spawn(forever(), "long")
    origin = f"http://{client.host}:{client.port}"
    response = await client.post(
        f"/jobs/api/jobs/{job.id}/cancel", headers={"Origin": origin}
    )
    assert response.status == 200 and job.done


async def test_nothing_changes_on_get(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    job = await scheduler_of(client).spawn(forever(), "long")
    for path in [f"/jobs/jobs/{job.id}/cancel", f"/jobs/api/jobs/{job.id}/cancel"]:
        response = await client.get(path)
        assert response.status == 405
    assert not job.done
    await job.close()


async def test_security_headers_on_every_answer(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    for path in [
        "/jobs/",
        "/jobs/api/jobs",
        "/jobs/static/dashboard.css",
        "/jobs/nope",
    ]:
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"


async def test_the_applications_own_routes_are_untouched(
    aiohttp_client: ClientFactory,
) -> None:
    app = make_app()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app.router.add_get("/hello", hello)
    client = await aiohttp_client(app)
    response = await client.get("/hello", headers={"X-Forwarded-For": "1.2.3.4"})
    assert response.status == 200 and "Content-Security-Policy" not in response.headers


def test_setup_checks_its_arguments() -> None:
    with pytest.raises(ConfigError, match="prefix"):
        dashboard.setup(web.Application(), prefix="jobs")
    with pytest.raises(ConfigError, match="prefix"):
        dashboard.setup(web.Application(), prefix="/jobs/")
    with pytest.raises(ConfigError, match="authorize"):
        dashboard.setup(web.Application(), authorize="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="trusted_origins"):
        dashboard.setup(web.Application(), trusted_origins="https://a.example")
    with pytest.raises(ConfigError, match="trusted_origins"):
        dashboard.setup(web.Application(), trusted_origins=["a.example"])
    with pytest.raises(ConfigError, match="page_size"):
        dashboard.setup(web.Application(), page_size=0)
    with pytest.raises(ConfigError, match="app"):
        dashboard.setup("app")  # type: ignore[arg-type]
    app = web.Application()
    dashboard.setup(app)
    with pytest.raises(SetupError, match="twice"):
        dashboard.setup(app)
    with pytest.raises(SetupError, match="no dashboard"):
        dashboard.audit_log(web.Application())


WRITES = [
    "/jobs/jobs/some-1/cancel",
    "/jobs/api/jobs/some-1/cancel",
    "/jobs/jobs/cancel",
    "/jobs/api/jobs/cancel",
    "/jobs/tasks/run",
    "/jobs/api/tasks/run",
    "/jobs/tasks/retry",
    "/jobs/api/tasks/retry",
    "/jobs/tasks/enable",
    "/jobs/api/tasks/enable",
    "/jobs/tasks/disable",
    "/jobs/api/tasks/disable",
    "/jobs/tasks/unschedule",
    "/jobs/api/tasks/unschedule",
    "/jobs/tasks/cancel",
    "/jobs/api/tasks/cancel",
    "/jobs/keywords/fire",
    "/jobs/api/keywords/fire",
]


@pytest.mark.parametrize("path", WRITES)
async def test_every_action_is_refused_when_forwarded_cross_site_or_read_only(
    aiohttp_client: ClientFactory, path: str
) -> None:
    client = await aiohttp_client(make_app())
    for headers in (
        {**SAME_ORIGIN, "X-Forwarded-For": "203.0.113.5"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},
    ):
        response = await client.post(path, json={"key": "x"}, headers=headers)
        assert (response.status, await response.text()) == (403, REFUSED)
    response = await client.get(path)
    assert response.status in (405, 200) if path.endswith("/jobs/cancel") else 405
    entries = dashboard.audit_log(client.app)  # type: ignore[arg-type]
    assert [e.outcome for e in entries] == ["refused"] * 3

    def read_only(request: web.Request, action: str) -> bool:
        return action == "view"

    client = await aiohttp_client(make_app(authorize=read_only))
    response = await client.post(path, json={"key": "x"}, headers=SAME_ORIGIN)
    assert response.status == 403


def test_the_dashboard_ends_its_streams_before_anything_else_on_shutdown() -> None:
    app = web.Application()
    aiohttp_jobs.setup(app)
    before = list(app.on_shutdown)
    dashboard.setup(app)
    assert list(app.on_shutdown)[1 : 1 + len(before)] == before
    assert app.on_shutdown[0].__name__ == "end_streams"


async def test_authorize_may_send_the_browser_to_a_login_page(
    aiohttp_client: ClientFactory,
) -> None:
    def to_login(request: web.Request, action: str) -> bool:
        raise web.HTTPFound("/login")

    client = await aiohttp_client(make_app(authorize=to_login))
    response = await client.get("/jobs/jobs", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (302, "/login")
