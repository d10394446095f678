"""Inline SVG timeline of one scenario: load figures, fault windows, alert lanes.

Hand-made SVG keeps report.html self-contained (no script, no network): panels
share one time axis in seconds since the scenario started; fault windows are
shaded across every panel; each alert gets a lane showing pending and firing
in Prometheus and when Alertmanager held it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from gameday.reports.model import LoadPoint, ScenarioReport

__all__ = ["timeline_svg"]

WIDTH = 960
LEFT = 64
RIGHT = 16
PANEL_HEIGHT = 88
PANEL_GAP = 22
LANE_HEIGHT = 18

COLORS = {
    "rps": "#2563eb",
    "error_ratio": "#dc2626",
    "p95": "#7c3aed",
    "ttft": "#0891b2",
    "fault": "rgba(245, 158, 11, 0.18)",
    "fault_edge": "#d97706",
    "pending": "#fcd34d",
    "firing": "#ef4444",
    "active": "#7f1d1d",
}


@dataclass(frozen=True)
class _Axis:
    start: float
    end: float

    def x(self, t: float) -> float:
        span = max(self.end - self.start, 1.0)
        return LEFT + (t - self.start) / span * (WIDTH - LEFT - RIGHT)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 2.5, 5, 10):
        magnitude = 10 ** len(str(int(value))) / 10
        candidate = step * magnitude
        if candidate >= value:
            return float(candidate)
    return float(value)


def _series_path(
    points: Sequence[LoadPoint],
    axis: _Axis,
    top: float,
    value: Callable[[LoadPoint], float | None],
    maximum: float,
) -> str:
    segments: list[str] = []
    pen_down = False
    for point in points:
        v = value(point)
        if v is None:
            pen_down = False
            continue
        y = top + PANEL_HEIGHT - min(v / maximum, 1.0) * PANEL_HEIGHT
        segments.append(f"{'L' if pen_down else 'M'}{axis.x(point.t):.1f},{y:.1f}")
        pen_down = True
    return " ".join(segments)


def _panel(
    title: str,
    top: float,
    axis: _Axis,
    points: Sequence[LoadPoint],
    series: Sequence[tuple[str, str, Callable[[LoadPoint], float | None]]],
    maximum: float | None = None,
    unit: str = "",
) -> list[str]:
    values = [v for _, _, f in series for p in points if (v := f(p)) is not None]
    top_value = maximum if maximum is not None else _nice_max(max(values, default=0.0) * 1.1)
    out = [
        f'<rect x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" height="{PANEL_HEIGHT}" class="panel"/>',
        f'<text x="{LEFT - 6}" y="{top + 10}" class="tick" text-anchor="end">{top_value:g}{unit}</text>',
        f'<text x="{LEFT - 6}" y="{top + PANEL_HEIGHT}" class="tick" text-anchor="end">0</text>',
    ]
    legend_x = LEFT + 6
    out.append(f'<text x="{legend_x}" y="{top - 5}" class="title">{escape(title)}</text>')
    legend_x += 8 * len(title) + 14
    for label, color, func in series:
        path = _series_path(points, axis, top, func, top_value)
        if path:
            out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        out.append(f'<rect x="{legend_x}" y="{top - 13}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{legend_x + 14}" y="{top - 4}" class="legend">{escape(label)}</text>')
        legend_x += 14 + 7 * len(label) + 16
    return out


def _alert_lanes(scenario: ScenarioReport, axis: _Axis, top: float) -> tuple[list[str], float]:
    names = sorted({a.alert for a in scenario.alerts})
    out: list[str] = []
    if not names:
        return out, top
    out.append(
        f'<text x="{LEFT + 6}" y="{top - 5}" class="title">alerts (Prometheus pending / firing; Alertmanager active)</text>'
    )
    for row, name in enumerate(names):
        y = top + row * (LANE_HEIGHT + 4)
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 13}" class="lane" text-anchor="end">{escape(name[:24])}</text>'
        )
        out.append(
            f'<rect x="{LEFT}" y="{y}" width="{WIDTH - LEFT - RIGHT}" height="{LANE_HEIGHT}" class="lanebg"/>'
        )
        for source, height, offset in (
            ("prometheus", LANE_HEIGHT * 0.6, 0.0),
            ("alertmanager", LANE_HEIGHT * 0.4, LANE_HEIGHT * 0.6),
        ):
            changes = [a for a in scenario.alerts if a.alert == name and a.source == source]
            for index, change in enumerate(changes):
                if change.state not in ("pending", "firing", "active"):
                    continue
                end = changes[index + 1].at if index + 1 < len(changes) else axis.end
                x0, x1 = axis.x(change.at), axis.x(end)
                out.append(
                    f'<rect x="{x0:.1f}" y="{y + offset:.1f}" width="{max(x1 - x0, 1.5):.1f}" '
                    f'height="{height:.1f}" fill="{COLORS[change.state]}">'
                    f"<title>{escape(name)} {change.state} at {source} from +{change.at - axis.start:.1f}s</title></rect>"
                )
    return out, top + len(names) * (LANE_HEIGHT + 4)


def timeline_svg(scenario: ScenarioReport) -> str:
    points = scenario.load
    starts = [t for t in (scenario.started_at, *(p.t for p in points[:1])) if t is not None]
    start = min(starts) if starts else 0.0
    ends = [t for t in (scenario.finished_at, *(p.t for p in points[-1:])) if t is not None]
    end = max(ends) if ends else start + 1.0
    axis = _Axis(start, end)
    body: list[str] = []
    top = 24.0
    panels = [
        ("requests/s", [("rps", COLORS["rps"], lambda p: p.rps)], None, ""),
        (
            "error ratio",
            [("errors", COLORS["error_ratio"], lambda p: p.error_ratio if p.requests else None)],
            1.0,
            "",
        ),
        (
            "latency (ms)",
            [
                ("p95", COLORS["p95"], lambda p: p.p95_ms),
                ("TTFT p95", COLORS["ttft"], lambda p: p.ttft_p95_ms),
            ],
            None,
            "",
        ),
    ]
    panel_tops = []
    for title, series, maximum, unit in panels:
        body += _panel(title, top, axis, points, series, maximum, unit)
        panel_tops.append(top)
        top += PANEL_HEIGHT + PANEL_GAP
    lanes, top = _alert_lanes(scenario, axis, top + 4)
    body += lanes
    bottom = top + 8
    shading: list[str] = []
    for fault in scenario.faults:
        if fault.applied_at is None:
            continue
        x0 = axis.x(fault.applied_at)
        x1 = axis.x(fault.reverted_at) if fault.reverted_at else x0 + 2
        shading.append(
            f'<rect x="{x0:.1f}" y="{panel_tops[0]}" width="{max(x1 - x0, 2):.1f}" height="{bottom - panel_tops[0]:.1f}" '
            f'fill="{COLORS["fault"]}" stroke="{COLORS["fault_edge"]}" stroke-dasharray="3,2">'
            f"<title>fault {escape(fault.name)} ({escape(fault.type)})</title></rect>"
        )
        shading.append(
            f'<text x="{x0 + 3:.1f}" y="{panel_tops[0] + 12}" class="fault">{escape(fault.name)}</text>'
        )
    ticks: list[str] = []
    span = max(end - start, 1.0)
    step = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 1e9) if span / s <= 12)
    t = 0.0
    while t <= span:
        x = axis.x(start + t)
        ticks.append(
            f'<line x1="{x:.1f}" y1="{panel_tops[0]}" x2="{x:.1f}" y2="{bottom - 8:.1f}" class="grid"/>'
        )
        ticks.append(
            f'<text x="{x:.1f}" y="{bottom + 8:.1f}" class="tick" text-anchor="middle">{t:g}s</text>'
        )
        t += step
    height = bottom + 16
    style = (
        "<style>.panel{fill:#fafafa;stroke:#d4d4d8}.lanebg{fill:#f4f4f5}.grid{stroke:#e4e4e7}"
        ".tick{font:10px sans-serif;fill:#52525b}.title{font:bold 11px sans-serif;fill:#18181b}"
        ".legend{font:10px sans-serif;fill:#3f3f46}.lane{font:10px sans-serif;fill:#18181b}"
        ".fault{font:10px sans-serif;fill:#92400e}</style>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'width="100%" role="img" aria-label="timeline of {escape(scenario.name)}" class="timeline">'
        + style
        + "".join(ticks + shading + body)
        + "</svg>"
    )
