"""The browser journeys' fixtures (see ``browser_support``), for every test of
this folder. They cost nothing to a test that asks for none: Chromium starts
with the first test that asks for a ``browser``, once per test process."""

from tests.dashboard.browser_support import (  # noqa: F401  (fixtures)
    browser,
    chromium_browser,
    serve_dashboard,
    session_serve,
    shots,
)
