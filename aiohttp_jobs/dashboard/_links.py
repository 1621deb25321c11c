"""Links as the browser must follow them: relative to the page's own path.

Every link is made from the router (so it follows the mount prefix), then
written relative to the path the request arrived on. Behind a proxy that
strips or adds a prefix the browser's URL differs from the one the
application sees, but only above the dashboard, so relative links still
resolve; nothing is read from forwarding headers.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from aiohttp import web

__all__ = ["relative", "url"]


def relative(request: web.Request, target: str) -> str:
    """*target* (an absolute path, maybe with a query) relative to *request*'s path."""
    path, sep, query = target.partition("?")
    base = request.raw_path.split("?", 1)[0]
    base_dir = base[: base.rfind("/") + 1] or "/"
    head, _, tail = path.rpartition("/")
    up = posixpath.relpath(head + "/", base_dir)
    if up == ".":
        prefix = "./"
    elif up.startswith(".."):
        prefix = up + "/"
    else:  # "./" first: a first segment holding ":" would read as a scheme
        prefix = "./" + up + "/"
    return prefix + tail + (sep + query if query else "")


def url(
    request: web.Request,
    name: str,
    query: Mapping[str, str] | None = None,
    **parts: str,
) -> str:
    """The relative link to the dashboard route *name*."""
    app = request.app
    found = app.router[name].url_for(**parts)
    if query:
        found = found.with_query(query)
    return relative(request, str(found))
