"""A private Prometheus and Alertmanager for one scenario: real binaries, loopback ports.

Configs are generated into the scenario's report folder (so a reader can see
exactly what was evaluated, compressed rules included); data goes to a scratch
directory that is removed with the run.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gameday.core.changes import ChangeSet
from gameday.core.errors import Aborted, ComponentMissing, ComponentUnreachable
from gameday.core.processes import Spawned, spawn
from gameday.rules import bundled_rule_files, compress, load_rule_file, write_rule_file
from gameday.rules.model import RuleError, RuleGroup
from gameday.targets.base import TargetContext
from gameday.targets.local.spec import AlertmanagerSpec, PrometheusSpec

__all__ = ["MonitoringStack", "RulesPrepared", "find_binary", "prepare_rules"]

INSTALL_HINT = {
    "prometheus": "apt-get install prometheus",
    "prometheus-alertmanager": "apt-get install prometheus-alertmanager",
    "promtool": "apt-get install prometheus",
}


def find_binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    hint = INSTALL_HINT.get(names[0], "")
    raise ComponentMissing(f"{names[0]} is not installed" + (f" (Debian: {hint})" if hint else ""))


@dataclass(frozen=True)
class RulesPrepared:
    files: list[Path]
    factor: float
    sources: list[Path] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    """Each rewritten ``for:`` or window, as 'alert: field before -> after'."""


def rule_sources(spec: PrometheusSpec, scenario_dir: Path) -> list[tuple[int, Path]]:
    """Each rule file the scenario names, with the index of its ``rules`` entry."""
    sources: list[tuple[int, Path]] = []
    for index, entry in enumerate(spec.rules):
        if entry == "bundled":
            sources.extend((index, path) for path in bundled_rule_files())
        else:
            path = Path(entry)
            sources.append((index, path if path.is_absolute() else scenario_dir / path))
    return sources


def _compressed(spec: PrometheusSpec, source: Path) -> tuple[list[RuleGroup], list[str]]:
    groups = load_rule_file(source)
    if spec.time_compression == 1:
        return groups, []
    try:
        groups, rewrites = compress(groups, spec.time_compression, spec.compression_floor)
    except (ValueError, OverflowError) as error:
        raise RuleError(
            f"{source}: cannot compress its time x{spec.time_compression:g}: {error}"
        ) from None
    return groups, [str(r) for r in rewrites]


def rule_problems(spec: PrometheusSpec, scenario_dir: Path) -> list[tuple[int, str]]:
    """What :func:`prepare_rules` would fail on, found without writing anything: a rule
    file that is missing or does not load, time that does not compress."""
    problems: list[tuple[int, str]] = []
    for index, source in rule_sources(spec, scenario_dir):
        try:
            _compressed(spec, source)
        except RuleError as error:
            problems.append((index, str(error)))
    return problems


def prepare_rules(spec: PrometheusSpec, scenario_dir: Path, out_dir: Path) -> RulesPrepared:
    """Load the scenario's rule files, compress their time, write them for Prometheus."""
    sources = [path for _index, path in rule_sources(spec, scenario_dir)]
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    changes: list[str] = []
    for index, source in enumerate(sources):
        groups, rewrites = _compressed(spec, source)
        changes.extend(rewrites)
        target = out_dir / f"{index:02d}-{source.stem}.yml"
        write_rule_file(groups, target)
        written.append(target)
    return RulesPrepared(written, spec.time_compression, sources, changes)


def wait_ready(url: str, process: Spawned, what: str, timeout: float, ctx: TargetContext) -> None:
    deadline = time.monotonic() + timeout
    problem = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if ctx.stop.is_set():
                raise Aborted("signal")
            if process.popen.poll() is not None:
                raise ComponentUnreachable(
                    f"{what} exited with status {process.popen.returncode} while starting; "
                    f"see {ctx.artifacts / (process.name + '.log')}"
                )
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError as error:
                problem = type(error).__name__
            ctx.stop.wait(0.1)
    raise ComponentUnreachable(f"{what} was not ready at {url} within {timeout:g}s ({problem})")


class MonitoringStack:
    def __init__(
        self,
        ctx: TargetContext,
        changes: ChangeSet,
        scratch: Path,
        prometheus: PrometheusSpec,
        alertmanager: AlertmanagerSpec,
    ) -> None:
        self.ctx = ctx
        self.changes = changes
        self.scratch = scratch
        self.prometheus_spec = prometheus
        self.alertmanager_spec = alertmanager
        self.processes: list[Spawned] = []
        self.prometheus_url = ""
        self.alertmanager_url = ""
        self.rules: RulesPrepared | None = None
        self.alerting_rules = 0

    def _start(self, name: str, command: list[str]) -> Spawned:
        log_file = (self.ctx.artifacts / f"{name}.log").open("ab")
        try:
            process = spawn(
                command, name=name, changes=self.changes, stdout=log_file, stderr=log_file
            )
        finally:
            log_file.close()  # the child has its own copy of the descriptor
        self.processes.append(process)
        return process

    def start(
        self,
        *,
        prometheus_port: int,
        alertmanager_port: int,
        scrape_jobs: dict[str, str],
        labels: dict[str, str],
    ) -> None:
        """Start Alertmanager, then Prometheus scraping ``scrape_jobs`` (job -> host:port)."""
        prometheus_bin = find_binary("prometheus")
        alertmanager_bin = find_binary("prometheus-alertmanager", "alertmanager")
        config_dir = self.ctx.artifacts / "config"
        config_dir.mkdir(parents=True, exist_ok=True)

        am = self.alertmanager_spec
        alertmanager_config = {
            "route": {
                "receiver": "gameday",
                "group_by": ["alertname"],
                "group_wait": f"{am.group_wait:g}s",
                "group_interval": f"{am.group_interval:g}s",
                "repeat_interval": f"{am.repeat_interval:g}s",
            },
            "receivers": [{"name": "gameday"}],
        }
        am_config_path = config_dir / "alertmanager.yml"
        am_config_path.write_text(json.dumps(alertmanager_config, indent=2))  # JSON is YAML
        alertmanager = self._start(
            "alertmanager",
            [
                alertmanager_bin,
                f"--config.file={am_config_path}",
                f"--storage.path={self.scratch / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",  # no HA gossip port
            ],
        )
        self.alertmanager_url = f"http://127.0.0.1:{alertmanager_port}"

        spec = self.prometheus_spec
        self.rules = prepare_rules(spec, self.ctx.scenario_dir, config_dir / "rules")
        interval = f"{spec.scrape_interval:g}s"
        prometheus_config = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": f"{spec.evaluation_interval:g}s",
                "external_labels": {"gameday_scenario": self.ctx.scenario},
            },
            "rule_files": [str(path) for path in self.rules.files],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": job,
                    "honor_labels": job == "kube-state-metrics",
                    "static_configs": [{"targets": [address], "labels": labels}],
                }
                for job, address in scrape_jobs.items()
            ],
        }
        prom_config_path = config_dir / "prometheus.yml"
        prom_config_path.write_text(json.dumps(prometheus_config, indent=2))
        prometheus = self._start(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={prom_config_path}",
                f"--storage.tsdb.path={self.scratch / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--storage.tsdb.retention.time=1d",
                # resolved alerts reach Alertmanager at once; re-sends need not wait a minute
                "--rules.alert.resend-delay=1s",
            ],
        )
        self.prometheus_url = f"http://127.0.0.1:{prometheus_port}"
        wait_ready(f"{self.alertmanager_url}/-/ready", alertmanager, "Alertmanager", 30, self.ctx)
        wait_ready(f"{self.prometheus_url}/-/ready", prometheus, "Prometheus", 30, self.ctx)
        self.alerting_rules = self._check_rules_loaded()

    def _check_rules_loaded(self) -> int:
        """Prometheus skips rule files it cannot find without a word: count what it loaded."""
        assert self.rules is not None
        expected = sum(
            1 for path in self.rules.files for group in load_rule_file(path) for _ in group.alerts
        )
        response = httpx.get(f"{self.prometheus_url}/api/v1/rules", params={"type": "alert"})
        loaded = sum(len(g["rules"]) for g in response.json()["data"]["groups"])
        if loaded != expected:
            config = self.ctx.artifacts / "config" / "rules"
            log = self.ctx.artifacts / "prometheus.log"
            raise ComponentUnreachable(
                f"Prometheus loaded {loaded} alerting rules of the {expected} written to {config}; "
                f"see {log}"
            )
        return loaded

    def wait_scraped(self, job: str, timeout: float) -> None:
        """Wait until Prometheus has scraped ``job`` successfully at least once."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.ctx.stop.is_set():
                    raise Aborted("signal")
                try:
                    response = client.get(
                        f"{self.prometheus_url}/api/v1/query",
                        params={"query": f'up{{job="{job}"}}'},
                    )
                    result = response.json()["data"]["result"]
                    if result and result[0]["value"][1] == "1":
                        return
                except (httpx.HTTPError, ValueError, KeyError, IndexError):
                    pass
                self.ctx.stop.wait(0.2)
        raise ComponentUnreachable(f"Prometheus did not scrape job {job!r} within {timeout:g}s")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
