"""Text and data views of a workflow: listing, debrief, why, dot, describe.

Pure functions of the workflow's current state, read through public properties;
no external program needed. A workflow is seen as a :class:`~.step.Group`, a
nested one found with ``step._as_group()``, so ``model`` can import this module.
"""

from __future__ import annotations

import traceback
from collections import Counter

from .step import BaseStep, Group, Step, StepState

__all__ = [
    "debrief",
    "describe",
    "flags",
    "listing",
    "ordered",
    "outcome",
    "to_dot",
    "why",
]

_MAX_REPR = 60


def _short(value: object) -> str:
    return _clip(repr(value))


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _walk(workflow: Group, depth: int = 0) -> list[tuple[BaseStep, int]]:
    """Every step, depth first, each workflow's steps in topological order."""
    out: list[tuple[BaseStep, int]] = []
    for step in ordered(workflow):
        out.append((step, depth))
        group = step._as_group()
        if group is not None:
            out.extend(_walk(group, depth + 1))
    return out


def ordered(workflow: Group) -> list[BaseStep]:
    """The steps in topological order, or in the order they were added when the
    graph is not valid (a view must still show a broken workflow)."""
    try:
        return workflow.topological()
    except ValueError:  # a cycle or a bad requirement: list in insertion order
        return list(workflow.steps)


def outcome(step: BaseStep) -> str:
    """The result or exception of a finished step, in a few words."""
    state = step.state
    if state is StepState.SUCCEEDED:
        if isinstance(step, Step):
            return f"-> {_short(step.result())}"
        return "-> True"
    if state is StepState.FAILED:
        if step._as_group() is not None:
            text = _clip(str(step.exception()))
            return f"-> False ({text})" if not step.critical else f"!! {text}"
        return f"!! {_short(step.exception())}"
    if state is StepState.CANCELLED:
        return "(cancelled)"
    return ""


def flags(step: BaseStep) -> str:
    """Two letters: C for critical, F for forever, a dash for neither."""
    return ("C" if step.critical else "-") + ("F" if step.forever else "-")


def listing(workflow: Group) -> str:
    """One line per step: rank, flags, state, label, outcome, required ranks."""
    walk = _walk(workflow)
    ranks = {step: rank for rank, (step, _) in enumerate(walk, 1)}
    width = len(str(len(walk)))
    lines = []
    for step, depth in walk:
        kind = " [workflow]" if step._as_group() is not None else ""
        text = f"{ranks[step]:>{width}} {flags(step)} {step.state.value:<9} "
        text += "  " * depth + step.label + kind
        result = outcome(step)
        if result:
            text += "  " + result
        required = sorted(ranks[r] for r in step.requires if r in ranks)
        if required:
            text += "  requires " + ", ".join(map(str, required))
        lines.append(text)
    return "\n".join(lines)


def why(workflow: Group) -> str:
    """How the run ended (or where it stands), in one sentence."""
    steps = [step for step, _ in _walk(workflow)]
    finished = sum(step.state.final for step in steps)
    state = workflow.state
    if state is StepState.IDLE or state is StepState.READY:
        return f"not run yet ({len(steps)} steps)"
    if not state.final:
        return f"running: {finished} of {len(steps)} steps finished"
    if workflow.state is StepState.SUCCEEDED:
        failed = [s for s in steps if s.state is StepState.FAILED and not s.critical]
        extra = (
            f"; non-critical failures: {', '.join(repr(s.label) for s in failed)}"
            if failed
            else ""
        )
        return f"succeeded: every step finished{extra}"
    if workflow.state is StepState.CANCELLED:
        return "cancelled while running"
    error = workflow.exception()
    if workflow.failed_step is not None or workflow.timed_out:
        return str(error)
    return f"failed: {error!r}"


def debrief(workflow: Group) -> str:
    """Why the run ended, counts per state, the listing, and each failure's
    traceback (critical ones first)."""
    walk = _walk(workflow)
    counts = Counter(step.state.value for step, _ in walk)
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    parts = [
        f"{workflow!r}: {why(workflow)}",
        f"steps: {summary or 'none'}",
        "flags: C critical, F forever",
        listing(workflow),
    ]
    failed = [
        (step, error)
        for step, _ in walk
        if isinstance(step, Step)
        and step.state is StepState.FAILED
        and (error := step.exception()) is not None
    ]
    failed.sort(key=lambda item: not item[0].critical)
    for step, error in failed:
        kind = "critical" if step.critical else "non-critical"
        trace = "".join(traceback.format_exception(error)).rstrip()
        parts.append(f"--- {kind} step {step.label!r} raised:\n{trace}")
    return "\n".join(parts)


# -- Graphviz dot ---------------------------------------------------------------

#: Fill colours by state, shared with the SVG drawing.
STATE_COLORS = {
    StepState.IDLE: "#f1f3f5",
    StepState.READY: "#fff3bf",
    StepState.RUNNING: "#a5d8ff",
    StepState.SUCCEEDED: "#b2f2bb",
    StepState.FAILED: "#ffc9c9",
    StepState.CANCELLED: "#dee2e6",
}
CRITICAL_COLOR = "#c92a2a"
NORMAL_COLOR = "#495057"


def _quote(text: str) -> str:
    return (
        '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    )


def _entry(step: BaseStep) -> str:
    """The node an edge into *step* points at (a nested workflow's first step)."""
    while (group := step._as_group()) is not None:
        firsts = [s for s in group.steps if not s.requires]
        if not firsts:
            return f"{step.id}-empty"
        step = firsts[0]
    return step.id


def _exit(step: BaseStep) -> str:
    """The node an edge out of *step* starts from (a nested workflow's last step)."""
    while (group := step._as_group()) is not None:
        required = {r for s in group.steps for r in s.requires}
        lasts = [s for s in group.steps if s not in required]
        if not lasts:
            return f"{step.id}-empty"
        step = lasts[-1]
    return step.id


def to_dot(workflow: Group) -> str:
    """Graphviz source: boxes filled by state, critical steps with a thick red
    border, forever steps dashed, nested workflows as clusters."""
    lines = [
        f"digraph {_quote(workflow.label)} {{",
        "  compound=true;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    _dot_body(workflow, lines, "  ")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_body(workflow: Group, lines: list[str], indent: str) -> None:
    if not workflow.steps:
        lines.append(f'{indent}{_quote(workflow.id + "-empty")} [label="(empty)"];')
    for step in ordered(workflow):
        color = CRITICAL_COLOR if step.critical else NORMAL_COLOR
        width = 2 if step.critical else 1
        style = "dashed" if step.forever else "solid"
        group = step._as_group()
        if group is not None:
            lines.append(f"{indent}subgraph {_quote('cluster_' + step.id)} {{")
            lines.append(
                f"{indent}  label={_quote(step.label + ' (' + step.state.value + ')')};"
                f" color={_quote(color)}; penwidth={width}; style={_quote(style)};"
            )
            _dot_body(group, lines, indent + "  ")
            lines.append(f"{indent}}}")
        else:
            label = f"{step.label}\n{step.state.value}"
            lines.append(
                f"{indent}{_quote(step.id)} [label={_quote(label)}, "
                f"fillcolor={_quote(STATE_COLORS[step.state])}, "
                f"color={_quote(color)}, penwidth={width}, "
                f"style={_quote('rounded,filled,' + style)}];"
            )
    for step in ordered(workflow):
        for required in step.requires:
            attrs = []
            if required._as_group() is not None:
                attrs.append(f"ltail={_quote('cluster_' + required.id)}")
            if step._as_group() is not None:
                attrs.append(f"lhead={_quote('cluster_' + step.id)}")
            extra = f" [{', '.join(attrs)}]" if attrs else ""
            lines.append(
                f"{indent}{_quote(_exit(required))} -> {_quote(_entry(step))}{extra};"
            )


# -- JSON-ready snapshot -----------------------------------------------------------


def describe(workflow: Group) -> dict[str, object]:
    """The workflow and its steps (topological order) as plain data."""
    return {
        "id": workflow.id,
        "label": workflow.label,
        "kind": "workflow",
        "state": workflow.state.value,
        "critical": workflow.critical,
        "forever": workflow.forever,
        "window": workflow.window,
        "timeout": workflow.timeout,
        "why": why(workflow),
        "requires": [r.id for r in workflow.requires],
        "steps": [_describe_step(step) for step in ordered(workflow)],
    }


def _describe_step(step: BaseStep) -> dict[str, object]:
    group = step._as_group()
    if group is not None:
        return describe(group)
    assert isinstance(step, Step)
    job = step.job
    return {
        "id": step.id,
        "label": step.label,
        "kind": "step",
        "state": step.state.value,
        "critical": step.critical,
        "forever": step.forever,
        "requires": [r.id for r in step.requires],
        "outcome": outcome(step),
        "job_id": None if job is None else job.id,
    }
