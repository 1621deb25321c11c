# ruff: noqa: T201 - this script shows its results on stdout
"""Jobs on a scheduler of their own, no web server (docs/quickstart.md).

Run it: ``python docs/examples/quickstart_scheduler.py``.
tests/docs/test_quickstart.py runs it and checks what it prints.
"""

from __future__ import annotations

import asyncio

import aiohttp_jobs


async def send_mail(user: str) -> str:
    await asyncio.sleep(0.01)  # stands for an SMTP call
    return f"mail sent to {user}"


async def main() -> None:
    async with aiohttp_jobs.Scheduler(limit=100) as scheduler:
        job = await scheduler.spawn(send_mail("ada"), "send-mail", priority="high")
        await job.wait()
        print(job.name, job.state.value, job.result())
        for done in scheduler.history.query(state="succeeded"):
            print("finished:", done.name)


if __name__ == "__main__":
    asyncio.run(main())
