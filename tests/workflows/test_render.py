"""Inspecting workflows: listing, debrief, why, dot, SVG and the JSON snapshot."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from functools import partial

import pytest

from aiohttp_jobs import Sequence, Step, StepFailedError, Workflow

SVG = "{http://www.w3.org/2000/svg}"


async def value(x: object) -> object:
    await asyncio.sleep(0)
    return x


async def explode() -> None:
    await asyncio.sleep(0)
    raise KeyError("missing-host")


def build() -> tuple[Workflow, dict[str, Step[object]]]:
    fetch_a = Step(partial(value, 1), label="fetch-a")
    fetch_b = Step(partial(value, 2), label="fetch-b")
    merge: Step[object] = Step(explode, label="merge", requires=(fetch_a, fetch_b))
    notify = Step(partial(value, 3), label="notify", requires=merge, critical=False)
    workflow = Workflow(notify, merge, fetch_b, fetch_a, label="report")
    steps = {s.label: s for s in (fetch_a, fetch_b, merge, notify)}
    return workflow, steps


def test_listing_before_the_run_is_topological() -> None:
    workflow, _ = build()
    lines = workflow.listing().splitlines()
    labels = [line.split()[3] for line in lines]
    assert labels.index("merge") > max(labels.index("fetch-a"), labels.index("fetch-b"))
    assert labels[-1] == "notify"
    merge_line = lines[labels.index("merge")]
    assert "idle" in merge_line and "requires 1, 2" in merge_line
    assert lines[-1].split()[1] == "--"  # notify: neither critical nor forever
    assert merge_line.split()[1] == "C-"
    assert "not run yet" in workflow.why()


async def test_listing_and_debrief_after_a_failed_run() -> None:
    workflow, _ = build()
    with pytest.raises(StepFailedError):
        await workflow.run()
    listing = workflow.listing()
    assert "succeeded fetch-a  -> 1" in listing
    assert "failed    merge  !! KeyError('missing-host')" in listing
    debrief = workflow.debrief()
    assert "aborted: critical step 'merge' failed: KeyError('missing-host')" in debrief
    assert "2 succeeded" in debrief and "1 failed" in debrief and "1 idle" in debrief
    assert "--- critical step 'merge' raised:" in debrief
    assert "Traceback (most recent call last)" in debrief
    assert "in explode" in debrief
    assert workflow.why().startswith("workflow 'report' aborted")


async def test_listing_shows_nested_workflows_indented() -> None:
    one = partial(value, 1)
    inner = Workflow(Sequence(Step(one, label="i1"), Step(one, label="i2")))
    inner_label = inner.label
    first = Step(one, label="first")
    inner.require(first)
    outer = Workflow(first, inner, label="outer")
    await outer.run()
    lines = outer.listing().splitlines()
    assert lines[1].split()[3:5] == [inner_label, "[workflow]"]
    assert "requires 1" in lines[1]
    assert lines[2].split()[3] == "i1" and lines[2].index("i1") > lines[1].index(
        inner_label
    )
    assert "requires 3" in lines[3]


async def test_dot_has_nodes_edges_and_clusters() -> None:
    a = Step(value, label='say "hi"')
    inner = Workflow(Step(value, label="inner-step"), label="inner", requires=a)
    b = Step(value, label="b", requires=inner, critical=False, forever=True)
    outer = Workflow(a, inner, b, label="outer")
    dot = outer.to_dot()
    assert dot.startswith('digraph "outer" {')
    assert 'say \\"hi\\"' in dot
    assert f'subgraph "cluster_{inner.id}"' in dot
    (inner_step,) = inner.steps
    assert f'"{a.id}" -> "{inner_step.id}" [lhead="cluster_{inner.id}"]' in dot
    assert f'"{inner_step.id}" -> "{b.id}" [ltail="cluster_{inner.id}"]' in dot
    assert "dashed" in dot and 'color="#c92a2a"' in dot
    assert dot.count("{") == dot.count("}")


async def test_svg_is_well_formed_and_shows_live_states() -> None:
    workflow, steps = build()
    nested = Workflow(Step(value, label="deep"), label="nested <&>")
    workflow.add(nested)
    before = ET.fromstring(workflow.to_svg())
    assert before.tag == f"{SVG}svg"
    groups = {
        g.get("data-step-id"): g.get("data-state")
        for g in before.iter(f"{SVG}g")
        if g.get("data-step-id")
    }
    expected = {s.id for s in steps.values()} | {nested.id, nested.steps[0].id}
    assert set(groups) == expected
    assert set(groups.values()) == {"idle"}
    assert groups[steps["merge"].id] == "idle"
    with pytest.raises(StepFailedError):
        await workflow.run()
    after = ET.fromstring(workflow.to_svg())
    states = {
        g.get("data-step-id"): g.get("data-state")
        for g in after.iter(f"{SVG}g")
        if g.get("data-step-id")
    }
    assert states[steps["fetch-a"].id] == "succeeded"
    assert states[steps["merge"].id] == "failed"
    assert len(list(after.iter(f"{SVG}path"))) >= 3  # two requirements + merge's
    assert "nested &lt;&amp;&gt;" in workflow.to_svg()


def test_svg_places_requirements_above_their_dependents() -> None:
    a = Step(value, label="a")
    b = Step(value, label="b", requires=a)
    c = Step(value, label="c", requires=b)
    root = ET.fromstring(Workflow(c, b, a).to_svg())
    y = {}
    for group in root.iter(f"{SVG}g"):
        rect = group.find(f"{SVG}rect")
        assert rect is not None
        y[group.get("data-step-id")] = float(rect.get("y", "0"))
    assert y[a.id] < y[b.id] < y[c.id]


def test_svg_is_wide_enough_for_a_long_heading() -> None:
    # One narrow step under a long workflow label: the drawing widens so the
    # heading is not cut off at its edge (it is clipped at 60 characters).
    label = "nightly-release-of-every-service-in-the-fleet"
    root = ET.fromstring(Workflow(Step(value, label="a"), label=label).to_svg())
    heading = f"{label} (idle)"
    assert float(root.get("width", "0")) >= len(heading) * 7.0
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert heading in texts


async def test_describe_is_json_ready_and_findable() -> None:
    workflow, steps = build()
    with pytest.raises(StepFailedError):
        await workflow.run()
    data = workflow.describe()
    json.dumps(data)
    assert data["state"] == "failed" and data["id"] == workflow.id
    by_label = {s["label"]: s for s in data["steps"]}  # type: ignore[attr-defined]
    assert by_label["merge"]["outcome"] == "!! KeyError('missing-host')"
    assert by_label["merge"]["requires"] == [steps["fetch-a"].id, steps["fetch-b"].id]
    assert Workflow.find(workflow.id) is workflow
    assert Workflow.find("nope") is None
