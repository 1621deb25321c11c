"""The deployment example (docs/deployment.md) works as the page says: health
checks answer, the dashboard refuses proxied requests unless the proxy's token
is there, and the timeouts nest: the app's drain fits in Gunicorn's
graceful_timeout, which fits in Kubernetes' grace period."""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from tests.docs.examples import EXAMPLES, load_example


async def test_health_and_dashboard_behind_a_proxy(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHBOARD_TOKEN", "s3cret")
    example = load_example("deployment_app")
    client = await aiohttp_client(example.create_app())
    assert (await client.get("/health/live")).status == 200
    assert (await client.get("/health/ready")).status == 200
    proxied = {"X-Forwarded-For": "203.0.113.7"}
    assert (await client.get("/jobs/", headers=proxied)).status == 403
    allowed = {**proxied, "X-Dashboard-Token": "s3cret"}
    assert (await client.get("/jobs/", headers=allowed)).status == 200


def test_timeouts_nest() -> None:
    example = load_example("deployment_app")
    gunicorn: dict[str, Any] = runpy.run_path(str(EXAMPLES / "gunicorn_conf.py"))
    assert gunicorn["worker_class"] == "aiohttp.GunicornWebWorker"
    drain = example.WAIT_TIMEOUT + example.CLOSE_TIMEOUT
    # aiohttp gives requests in flight 95% of graceful_timeout before the drain
    assert gunicorn["graceful_timeout"] >= drain + 5
    manifest = Path(EXAMPLES / "kubernetes.yaml").read_text()
    grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", manifest)[1])  # type: ignore[index]
    assert grace >= gunicorn["graceful_timeout"] + 5
    assert "path: /health/ready" in manifest and "path: /health/live" in manifest
