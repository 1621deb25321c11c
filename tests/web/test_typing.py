"""@atomic keeps the handler's signature for type checkers (mypy --strict)."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest
from aiohttp import web

import aiohttp_jobs

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = textwrap.dedent(
    """
    from aiohttp import web
    import aiohttp_jobs

    @aiohttp_jobs.atomic
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    class Item(web.View):
        @aiohttp_jobs.atomic
        async def post(self) -> web.Response:
            return web.Response()

    reveal_type(handler)
    reveal_type(Item.post)
    app = web.Application()
    app.router.add_post("/", handler)
    app.router.add_view("/item", Item)
    """
)


def test_atomic_keeps_the_runtime_signature() -> None:
    async def handler(request: web.Request) -> web.Response:
        """Doc."""
        return web.Response()

    wrapped = aiohttp_jobs.atomic(handler)
    assert inspect.iscoroutinefunction(wrapped)
    assert inspect.signature(wrapped) == inspect.signature(handler)
    assert (wrapped.__name__, wrapped.__doc__) == ("handler", "Doc.")
    assert wrapped.__wrapped__ is handler  # type: ignore[attr-defined]


def test_atomic_keeps_the_static_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = pytest.importorskip("mypy.api")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    monkeypatch.chdir(ROOT)  # mypy's configuration, and aiohttp_jobs on its path
    out, err, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(snippet),
        ]
    )
    assert status == 0, out + err
    revealed = [
        line.split("Revealed type is ")[1]
        for line in out.splitlines()
        if "Revealed type is " in line
    ]
    handler_type, view_type = revealed
    assert handler_type.startswith('"def (aiohttp.web_request.Request) -> ')
    assert view_type.startswith('"def (snippet.Item) -> ')
    for revealed_type in revealed:
        assert "Coroutine[" in revealed_type
        assert revealed_type.endswith('aiohttp.web_response.Response]"')
