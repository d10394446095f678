"""Inline SVG timeline of one scenario: load figures, fault windows, alert lanes.

Hand-made SVG keeps report.html self-contained (no script, no network): panels
share one time axis in seconds since the scenario started; fault windows are
shaded (translucent, on top) across every panel; each alert gets a lane showing pending and firing
in Prometheus and when Alertmanager held it. Every attribute and text passes
through :func:`_el`, which escapes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from gameday.reports.model import LoadPoint, ScenarioReport

__all__ = ["timeline_svg"]

WIDTH = 960
LEFT = 172
RIGHT = 16
PANEL_HEIGHT = 80
PANEL_GAP = 24
LANE_HEIGHT = 16

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
    "resolved": "#16a34a",
}
ACTIVE_STATES = ("pending", "firing", "active")

STYLE = (
    ".panel{fill:#fafafa;stroke:#d4d4d8}.lanebg{fill:#f4f4f5}.grid{stroke:#e4e4e7}"
    ".tick{font:10px sans-serif;fill:#52525b}.title{font:bold 11px sans-serif;fill:#18181b}"
    ".legend{font:10px sans-serif;fill:#3f3f46}.lane{font:10px sans-serif;fill:#18181b}"
    ".fault{font:10px sans-serif;fill:#92400e}"
)

Series = tuple[str, str, Callable[[LoadPoint], float | None]]


def _el(tag: str, text: str | None = None, /, **attrs: object) -> str:
    """One SVG element; attribute names use '_' for '-', values and text are escaped."""
    rendered = "".join(
        f' {name.rstrip("_").replace("_", "-")}="{escape(_fmt(value))}"'
        for name, value in attrs.items()
        if value is not None
    )
    if text is None:
        return f"<{tag}{rendered}/>"
    return f"<{tag}{rendered}>{text}</{tag}>"


def _fmt(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class _Axis:
    start: float
    end: float

    def x(self, t: float) -> float:
        span = max(self.end - self.start, 1.0)
        return LEFT + (t - self.start) / span * (WIDTH - LEFT - RIGHT)


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^n at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(value)


def _path(
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
            pen_down = False  # a gap, not a line through missing data
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
    series: Sequence[Series],
    maximum: float | None,
) -> list[str]:
    values = [v for _, _, f in series for p in points if (v := f(p)) is not None]
    top_value = maximum if maximum is not None else _nice_max(max(values, default=0.0) * 1.1)
    out = [
        _el("rect", x=LEFT, y=top, width=WIDTH - LEFT - RIGHT, height=PANEL_HEIGHT, class_="panel"),
        _el(
            "text",
            escape(f"{top_value:g}"),
            x=LEFT - 6,
            y=top + 10,
            class_="tick",
            text_anchor="end",
        ),
        _el("text", "0", x=LEFT - 6, y=top + PANEL_HEIGHT, class_="tick", text_anchor="end"),
        _el(
            "text",
            escape(title),
            x=LEFT - 6,
            y=top + PANEL_HEIGHT / 2,
            class_="title",
            text_anchor="end",
        ),
    ]
    legend_x = float(LEFT + 4)
    for label, color, func in series:
        path = _path(points, axis, top, func, top_value)
        if path:
            out.append(_el("path", d=path, fill="none", stroke=color, stroke_width="1.8"))
        out.append(_el("rect", x=legend_x, y=top - 12, width=9, height=9, fill=color))
        out.append(_el("text", escape(label), x=legend_x + 12, y=top - 4, class_="legend"))
        legend_x += 12 + 6.5 * len(label) + 14
    return out


def _alert_lanes(scenario: ScenarioReport, axis: _Axis, top: float) -> tuple[list[str], float]:
    names = sorted({a.alert for a in scenario.alerts})
    out: list[str] = []
    if not names:
        return out, top
    out.append(
        _el(
            "text",
            "alerts: Prometheus pending (yellow) / firing (red), Alertmanager active (dark), "
            "resolved (green mark)",
            x=LEFT + 4,
            y=top - 4,
            class_="legend",
        )
    )
    for row, name in enumerate(names):
        y = top + row * (LANE_HEIGHT + 4)
        out.append(
            _el("text", escape(name), x=LEFT - 6, y=y + 12, class_="lane", text_anchor="end")
        )
        out.append(
            _el(
                "rect", x=LEFT, y=y, width=WIDTH - LEFT - RIGHT, height=LANE_HEIGHT, class_="lanebg"
            )
        )
        lanes = (("prometheus", 0.6, 0.0), ("alertmanager", 0.4, 0.6))
        for source, height, offset in lanes:
            changes = [a for a in scenario.alerts if a.alert == name and a.source == source]
            for index, change in enumerate(changes):
                if change.state not in ACTIVE_STATES:
                    if index and changes[index - 1].state in ACTIVE_STATES:
                        out.append(_resolved_mark(name, source, change.at, axis, y))
                    continue
                end = changes[index + 1].at if index + 1 < len(changes) else axis.end
                x0, x1 = axis.x(change.at), axis.x(end)
                tip = f"{name} {change.state} at {source} from +{change.at - axis.start:.1f}s"
                out.append(
                    _el(
                        "rect",
                        _el("title", escape(tip)),
                        x=x0,
                        y=y + offset * LANE_HEIGHT,
                        width=max(x1 - x0, 1.5),
                        height=height * LANE_HEIGHT,
                        fill=COLORS[change.state],
                    )
                )
    return out, top + len(names) * (LANE_HEIGHT + 4)


def _resolved_mark(name: str, source: str, at: float, axis: _Axis, y: float) -> str:
    tip = f"{name} resolved at {source} at +{at - axis.start:.1f}s"
    return _el(
        "rect",
        _el("title", escape(tip)),
        x=axis.x(at) - 1.0,
        y=y - 2,
        width=2.5,
        height=LANE_HEIGHT + 4,
        fill=COLORS["resolved"],
    )


def _bounds(scenario: ScenarioReport) -> _Axis:
    points = scenario.load
    starts = [t for t in (scenario.started_at, *(p.t for p in points[:1])) if t is not None]
    start = min(starts) if starts else 0.0
    ends = [t for t in (scenario.finished_at, *(p.t for p in points[-1:])) if t is not None]
    return _Axis(start, max(ends) if ends else start + 1.0)


def timeline_svg(scenario: ScenarioReport) -> str:
    axis = _bounds(scenario)
    panels: list[tuple[str, list[Series], float | None]] = [
        ("requests/s", [("requests/s", COLORS["rps"], lambda p: p.rps)], None),
        (
            "error ratio",
            [
                (
                    "error ratio",
                    COLORS["error_ratio"],
                    lambda p: p.error_ratio if p.requests else None,
                )
            ],
            1.0,
        ),
        (
            "latency ms",
            [
                ("p95 latency", COLORS["p95"], lambda p: p.p95_ms),
                ("TTFT p95", COLORS["ttft"], lambda p: p.ttft_p95_ms),
            ],
            None,
        ),
    ]
    body: list[str] = []
    top = 20.0
    first = top
    for title, series, maximum in panels:
        body += _panel(title, top, axis, scenario.load, series, maximum)
        top += PANEL_HEIGHT + PANEL_GAP
    lanes, top = _alert_lanes(scenario, axis, top + 4)
    body += lanes
    bottom = top + 8

    shading: list[str] = []
    for fault in scenario.faults:
        if fault.applied_at is None:
            continue
        x0 = axis.x(fault.applied_at)
        ended = fault.remedied_at or fault.reverted_at
        x1 = axis.x(ended) if ended else x0 + 2
        shading.append(
            _el(
                "rect",
                _el("title", escape(f"fault {fault.name} ({fault.type})")),
                x=x0,
                y=first,
                width=max(x1 - x0, 2.0),
                height=bottom - first,
                fill=COLORS["fault"],
                stroke=COLORS["fault_edge"],
                stroke_dasharray="3,2",
            )
        )
        shading.append(_el("text", escape(fault.name), x=x0 + 3, y=first + 12, class_="fault"))

    ticks: list[str] = []
    span = max(axis.end - axis.start, 1.0)
    step = next(s for s in (5, 10, 15, 30, 60, 120, 300, 600, 3600) if span / s <= 12)
    t = 0.0
    while t <= span:
        x = axis.x(axis.start + t)
        ticks.append(_el("line", x1=x, y1=first, x2=x, y2=bottom - 8, class_="grid"))
        ticks.append(_el("text", f"{t:g}s", x=x, y=bottom + 8, class_="tick", text_anchor="middle"))
        t += step
    return _el(
        "svg",
        _el("style", STYLE) + "".join(ticks + body + shading),
        xmlns="http://www.w3.org/2000/svg",
        viewBox=f"0 0 {WIDTH} {bottom + 16:.0f}",
        width="100%",
        role="img",
        aria_label=f"timeline of {scenario.name}",
        class_="timeline",
    )
