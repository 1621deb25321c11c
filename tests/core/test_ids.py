"""Ids that stay unique across forked processes (the shared numbering of jobs
and workflow steps; real forks are tested with each of them)."""

from __future__ import annotations

from aiohttp_jobs._core.ids import IdSpace


def test_a_fork_takes_a_new_prefix_and_earlier_ids_keep_theirs() -> None:
    space = IdSpace(prefix_bytes=4)
    before = space.next_seq()
    old_id = space.format(before)
    space._after_fork()  # what os.register_at_fork runs in a child
    after = space.next_seq()
    assert after > before
    new_id = space.format(after)
    assert old_id.split("-")[0] != new_id.split("-")[0]
    assert space.format(before) == old_id  # inherited objects keep their ids
    assert space.parse(old_id) == before and space.parse(new_id) == after


def test_parse_refuses_ids_this_process_did_not_make() -> None:
    space = IdSpace(prefix_bytes=4)
    seq = space.next_seq()
    assert space.parse("nohyphen") is None
    assert space.parse(f"{space.prefix}-zz") is None
    assert space.parse(f"{space.prefix}-0") is None
    assert space.parse(f"ffffffff-{seq:x}") is None or space.prefix == "ffffffff"
