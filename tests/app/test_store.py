"""``python -m example_app --store URL``: where the scheduled tasks live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import aiohttp_jobs
from example_app.__main__ import main
from example_app.app import create_app


def test_a_store_url_no_store_understands_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--store", "postgres://db/tasks", "--port", "0"])
    assert exited.value.code == 2
    assert "unknown store URL url='postgres://db/tasks'" in capsys.readouterr().err


async def test_tasks_live_in_the_sqlite_file_the_url_names(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    path = tmp_path / "tasks.db"
    app = create_app(store=f"sqlite:///{path}")
    client = await aiohttp_client(app)
    resp = await client.post(
        "/api/reminders",
        json={"user": "bob", "name": "tea", "text": "tea", "in_seconds": 3600},
    )
    assert resp.status == 201
    store = aiohttp_jobs.get_tasks(app).store
    assert type(store).__name__ == "SQLiteStore"
    assert await store.get("remind:bob.tea") is not None
    assert path.is_file()
    tasks = (await (await client.get("/jobs/api/tasks")).json())["tasks"]
    assert "remind:bob.tea" in {task["key"] for task in tasks}
