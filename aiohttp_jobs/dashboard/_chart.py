"""The overview's chart: jobs finished and failed per minute, drawn as inline
SVG on the server (no script, no external resource)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

__all__ = ["bars"]


def bars(finished: Sequence[int], failed: Sequence[int]) -> Markup:
    """Two series of per-minute counts (oldest first) as an SVG bar chart."""
    width, height = 600.0, 140.0
    count = max(1, len(finished))
    peak = max([1, *finished])
    slot = width / count
    out = [
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" '
        'role="img" aria-labelledby="chart-title" data-testid="throughput-chart" '
        'preserveAspectRatio="none">',
        '<title id="chart-title">Jobs finished (and failed) per minute, '
        f"last {count} minutes; peak {peak}</title>",
        f'<line class="axis" x1="0" y1="{height}" x2="{width}" y2="{height}"/>',
    ]
    for index, (done, bad) in enumerate(zip(finished, failed, strict=False)):
        x = index * slot
        h = height * done / peak
        out.append(
            f'<rect class="bar-ok" x="{x + 1:.1f}" y="{height - h:.1f}" '
            f'width="{max(slot - 2, 1):.1f}" height="{h:.1f}">'
            f"<title>{done} finished, {bad} failed ({count - index} min ago)</title>"
            "</rect>"
        )
        if bad:
            hb = height * bad / peak
            out.append(
                f'<rect class="bar-failed" x="{x + 1:.1f}" y="{height - hb:.1f}" '
                f'width="{max(slot - 2, 1):.1f}" height="{hb:.1f}"/>'
            )
    out.append("</svg>")
    # Labels outside the drawing, which stretches to the page's width.
    out.append(
        '<div class="chart-axis"><span>60 min ago</span>'
        f"<span>peak {peak} a minute</span><span>now</span></div>"
    )
    return Markup("".join(out))
