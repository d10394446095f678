"""report.html pages: self-contained (inline CSS and SVG, no script, no network).

The run's page has the suite table and every scenario; each scenario also gets a
page of its own (``<scenario>/report.html``) that opens on its findings. A
Content-Security-Policy in each page forbids any load, so a browser refuses a
request even if a future template tried one."""

from __future__ import annotations

import datetime as dt

import jinja2
from markupsafe import Markup

from gameday.reports.charts import timeline_svg
from gameday.reports.model import RunReport, ScenarioReport
from gameday.reports.score import score_items
from gameday.scenario.units import format_sample_value

__all__ = ["render_html", "render_scenario_html"]

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("gameday.reports", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}s"


def _clock(value: float | None) -> str:
    if value is None:
        return "—"
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _offset(value: float | None, origin: float | None) -> str:
    if value is None or origin is None:
        return "—"
    return f"+{value - origin:.1f}s"


_environment.filters["seconds"] = _seconds
_environment.filters["clock"] = _clock
_environment.filters["sample"] = format_sample_value
_environment.globals["offset"] = _offset
# charts.py escapes every attribute and text it writes, so its SVG is safe markup
_environment.globals["score_items"] = score_items
_environment.globals["timeline"] = lambda scenario: Markup(timeline_svg(scenario))  # noqa: S704


def render_html(report: RunReport) -> str:
    return _environment.get_template("report.html.j2").render(report=report)


def render_scenario_html(report: RunReport, scenario: ScenarioReport) -> str:
    return _environment.get_template("scenario.html.j2").render(report=report, scenario=scenario)
