"""A self-contained SVG drawing of a workflow, computed in pure Python.

Layered layout: a step sits one row below its lowest requirement; within a row,
steps are ordered by the mean position of their requirements (two sweeps), which
keeps most edges short and uncrossed. A nested workflow is drawn as a framed box
holding its own layout. Every step is a ``<g>`` carrying ``data-step-id`` and
``data-state`` and the classes ``wf-step wf-<state>``, so a page can restyle it
live from :meth:`Workflow.describe`.
"""

from __future__ import annotations

from html import escape

from .render import (
    CRITICAL_COLOR,
    NORMAL_COLOR,
    STATE_COLORS,
    ordered,
    outcome,
)
from .step import BaseStep, Group, Step

__all__ = ["to_svg"]

_STEP_H = 40.0
_MIN_W = 90.0
_MAX_W = 220.0
_CHAR_W = 7.0
_GAP_X = 24.0
_GAP_Y = 44.0
_PAD = 14.0
_HEADER = 24.0
_MAX_CHARS = int((_MAX_W - 20) / _CHAR_W)


class _Layout:
    """A workflow laid out in its own frame: sizes and positions of its steps."""

    __slots__ = ("boxes", "height", "inner", "width")
    width: float
    height: float

    def __init__(self, workflow: Group) -> None:
        order = ordered(workflow)
        self.inner: dict[BaseStep, _Layout] = {}
        size: dict[BaseStep, tuple[float, float]] = {}
        for step in order:
            group = step._as_group()
            if group is not None:
                sub = self.inner[step] = _Layout(group)
                header = len(_clip(step.label, _MAX_CHARS)) + len(step.state.value) + 3
                size[step] = (
                    max(sub.width + 2 * _PAD, _MIN_W, header * _CHAR_W + _PAD),
                    sub.height + _HEADER + _PAD,
                )
            else:
                chars = min(len(step.label), _MAX_CHARS)
                size[step] = (min(max(chars * _CHAR_W + 20, _MIN_W), _MAX_W), _STEP_H)
        layer: dict[BaseStep, int] = {}
        rows: list[list[BaseStep]] = []
        for step in order:
            depth = 1 + max((layer.get(r, -1) for r in step.requires), default=-1)
            layer[step] = depth
            while len(rows) <= depth:
                rows.append([])
            rows[depth].append(step)
        place: dict[BaseStep, float] = {}
        for row in rows:
            _spread(row, place)
        for _ in range(2):  # barycentre sweeps, top to bottom
            for row in rows[1:]:
                row.sort(key=lambda s: _mean(place, s))
                _spread(row, place)
        self.boxes: dict[BaseStep, tuple[float, float, float, float]] = {}
        widths = [
            sum(size[s][0] for s in row) + _GAP_X * (len(row) - 1) for row in rows
        ]
        self.width = max(widths, default=_MIN_W)
        y = 0.0
        for row, row_width in zip(rows, widths, strict=True):
            x = (self.width - row_width) / 2
            row_height = max(size[s][1] for s in row)
            for step in row:
                w, h = size[step]
                self.boxes[step] = (x, y + (row_height - h) / 2, w, h)
                x += w + _GAP_X
            y += row_height + _GAP_Y
        self.height = y - _GAP_Y if rows else _STEP_H


def _spread(row: list[BaseStep], place: dict[BaseStep, float]) -> None:
    count = len(row)
    for index, step in enumerate(row):
        place[step] = (index + 0.5) / count


def _mean(place: dict[BaseStep, float], step: BaseStep) -> float:
    required = step.requires
    if not required:
        return place[step]
    return sum(place[r] for r in required) / len(required)


def to_svg(workflow: Group) -> str:
    """The drawing as an SVG document (no scripts, no external resources)."""
    layout = _Layout(workflow)
    heading = f"{_clip(workflow.label, 60)} ({workflow.state.value})"
    # Wide enough for the heading too (bold text: a little wider per character).
    width = max(layout.width, len(heading) * _CHAR_W * 1.1) + 2 * _PAD
    height = layout.height + _HEADER + 2 * _PAD
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wf-graph" '
        f'width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="12" '
        f'data-workflow-id="{escape(workflow.id)}">',
        '<defs><marker id="wf-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        f'<path d="M0,0 L10,5 L0,10 z" fill="{NORMAL_COLOR}"/></marker></defs>',
        f"<title>{escape(workflow.label)}: {escape(workflow.state.value)}</title>",
        f'<text x="{_PAD}" y="{_PAD + 12}" font-weight="bold">{escape(heading)}</text>',
    ]
    _draw(layout, _PAD, _PAD + _HEADER, out)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _draw(layout: _Layout, ox: float, oy: float, out: list[str]) -> None:
    boxes = layout.boxes
    for step, (x, y, w, _) in boxes.items():  # edges first, under the boxes
        for required in step.requires:
            box = boxes.get(required)
            if box is None:
                continue
            rx, ry, rw, rh = box
            x1, y1 = ox + rx + rw / 2, oy + ry + rh
            x2, y2 = ox + x + w / 2, oy + y
            mid = (y1 + y2) / 2
            out.append(
                f'<path class="wf-edge" d="M{x1:.1f},{y1:.1f} C{x1:.1f},{mid:.1f} '
                f'{x2:.1f},{mid:.1f} {x2:.1f},{y2:.1f}" fill="none" '
                f'stroke="{NORMAL_COLOR}" marker-end="url(#wf-arrow)"/>'
            )
    for step, (x, y, w, h) in boxes.items():
        state = step.state.value
        stroke = CRITICAL_COLOR if step.critical else NORMAL_COLOR
        width = 2.5 if step.critical else 1
        dash = ' stroke-dasharray="5,3"' if step.forever else ""
        nested = step._as_group() is not None
        kind = "wf-workflow" if nested else "wf-step"
        tip = f"{step.label}: {state}"
        result = outcome(step)
        if result:
            tip += f" {result}"
        out.append(
            f'<g class="{kind} wf-{state}" data-step-id="{escape(step.id)}" '
            f'data-state="{state}"><title>{escape(tip)}</title>'
        )
        fill = STATE_COLORS[step.state]
        out.append(
            f'<rect x="{ox + x:.1f}" y="{oy + y:.1f}" width="{w:.1f}" '
            f'height="{h:.1f}" rx="6" fill="{fill}" '
            f'fill-opacity="{0.35 if nested else 1}" '
            f'stroke="{stroke}" stroke-width="{width}"{dash}/>'
        )
        label = escape(_clip(step.label, _MAX_CHARS))
        cx = ox + x + w / 2
        if isinstance(step, Step):
            out.append(
                f'<text x="{cx:.1f}" y="{oy + y + 17:.1f}" '
                f'text-anchor="middle">{label}</text>'
                f'<text x="{cx:.1f}" y="{oy + y + 32:.1f}" text-anchor="middle" '
                f'font-size="10" fill="#495057">{state}</text>'
            )
            out.append("</g>")
        else:
            out.append(
                f'<text x="{ox + x + _PAD / 2:.1f}" y="{oy + y + 16:.1f}" '
                f'font-weight="bold">{label} ({state})</text>'
            )
            out.append("</g>")
            inner = layout.inner[step]
            _draw(inner, ox + x + (w - inner.width) / 2, oy + y + _HEADER, out)
