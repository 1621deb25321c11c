"""A runnable aiohttp application that shows what aiohttp-jobs does.

Start it with ``python -m example_app`` (http://127.0.0.1:8080/ lists the
endpoints). Each capability lives in its own module with a ``register()``
function; :mod:`example_app.app` lists them in ``FEATURES``.
"""
