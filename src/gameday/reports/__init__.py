"""Reports: the run's events folded into report.json, junit.xml, summary.md and report.html."""

from gameday.reports.builder import ReportBuilder, build_report
from gameday.reports.model import RunReport, ScenarioReport
from gameday.reports.writers import write_reports

__all__ = ["ReportBuilder", "RunReport", "ScenarioReport", "build_report", "write_reports"]
