"""Gunicorn settings for ``deployment_app`` (docs/deployment.md).

gunicorn 'deployment_app:create_app()' -c gunicorn_conf.py
"""

import os

bind = "0.0.0.0:8080"
worker_class = "aiohttp.GunicornWebWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# After SIGTERM a worker has this long before Gunicorn kills it. aiohttp gives
# requests in flight 95% of it, then the drain runs: keep it above the app's
# wait_timeout + close_timeout (25 + 5) with room to spare.
graceful_timeout = 40
# A worker whose event loop does not answer for this long is killed and
# replaced: blocking work belongs in spawn_in_thread() or an isolated loop.
timeout = 30
