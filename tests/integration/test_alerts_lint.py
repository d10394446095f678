"""`gameday alerts lint` as a process, against real targets.

- the simulator (`gameday sim serve`, a real process) with the seeded mistakes of
  tests/rules/lint/seeded-mistakes.yml: each one is found, with the right fix; and a
  team's two-document PrometheusRule file whose rules can all fire: nothing reported;
- the bundled rules against the local tier's targets: the simulator's /metrics, the
  harness's kube-state-metrics exporter (the local target's own MetricsExporter and
  ContainerStateCollector, here for a server after an OOM kill and a restart) and its
  dcgm-exporter (the local target's DcgmCollector: NVML's readings where there is a GPU,
  a stand-in NVML that reports one GPU elsewhere, so names and labels are the
  collector's own). Nothing is reported, and the test shows why that is not because
  nothing was checked: every selector is found on the exporter that serves it, every
  label matcher is checked against real series but two that no /metrics can show, and
  the same rules against the simulator alone leave the container and GPU alerts unable
  to fire;
- a real Prometheus scraping the simulator, asked through its HTTP API;
- a target nothing listens on (exit 3).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gameday.rules import alert_rules, bundled_rule_files, load_bundled_rules
from gameday.targets.local.exporter import ContainerStateCollector, MetricsExporter
from gameday.targets.local.supervisor import ContainerState
from tests.conftest import require_binary
from tests.integration.sim.support import Sim, free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
LINT_RULES = REPO / "tests" / "rules" / "lint"
SEEDED = LINT_RULES / "seeded-mistakes.yml"

# Until `alerts` is registered in `gameday`'s own command, run the same typer app under
# a root of the same shape; once it is, the test runs `python -m gameday alerts`.
_WRAPPER = """
import typer
from gameday.cli.alerts import app
root = typer.Typer(pretty_exceptions_enable=False)
root.add_typer(app, name="alerts")
@root.callback()
def _root() -> None: pass
root()
"""


def _command() -> list[str]:
    from gameday.cli import app

    if any(group.name == "alerts" for group in app.registered_groups):
        return [sys.executable, "-m", "gameday"]
    return [sys.executable, "-c", _WRAPPER]


def alerts(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_command(), "alerts", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "250"},  # the table's width when it is not a terminal
    )


def report_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def findings(report: Any) -> dict[str, list[tuple[str, str | None]]]:
    return {
        rule["name"]: [(f["kind"], f["suggestion"]) for f in rule["findings"]]
        for rule in report["rules"]
    }


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    """The simulator on a free port, having served one chat request (so that
    http_requests_total has series), stopped at the end."""
    port = free_port()
    log = tmp_path / "sim.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gameday", "sim", "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started = Sim(proc=proc, port=port, log_path=log, started=time.monotonic())
    try:
        started.wait_healthy()
        assert started.chat().status_code == 200
        yield started
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- (a) the seeded mistakes ----------------------------------------------------------

SEEDED_FINDINGS: dict[str, list[tuple[str, str | None]]] = {
    "CounterWithoutTotal": [("unknown-metric", "vllm:prompt_tokens_total")],
    "RenamedKVCacheMetric": [("unknown-metric", "vllm:kv_cache_usage_perc")],
    "RenamedTimePerOutputToken": [("unknown-metric", "vllm:inter_token_latency_seconds_bucket")],
    "HistogramWithoutBucket": [("unknown-metric", "vllm:time_to_first_token_seconds_bucket")],
    "TypoInLabelName": [("unknown-label", 'model_name="gameday-sim-tiny"')],
    "UnknownModelName": [("label-value", 'model_name="gameday-sim-tiny"')],
    "UngroupedStatusCode": [("label-value", 'status="5xx"')],
    "UnclosedParenthesis": [("invalid", None)],
    "BrokenAnnotationTemplate": [("invalid", None)],
    # the controls: right, and nothing reported
    "gameday:kv_cache_usage:max": [],
    "RecordedSeriesCanFire": [],
    "AbsentIsNotAFinding": [],
    "KeywordsAreNotMetrics": [],
}


def test_every_seeded_mistake_is_found_with_its_fix(sim: Sim, tmp_path: Path) -> None:
    require_binary("promtool")
    live = alerts("lint", SEEDED, "--target", f"{sim.base}/metrics", "--format", "json")
    assert live.returncode == 1, live.stderr
    report = report_of(live)
    assert findings(report) == SEEDED_FINDINGS
    by_name = {rule["name"]: rule for rule in report["rules"]}
    assert "renamed in vLLM 0.9.2" in by_name["RenamedKVCacheMetric"]["findings"][0]["message"]
    assert "renamed in vLLM 0.11" in by_name["RenamedTimePerOutputToken"]["findings"][0]["message"]
    assert "_total suffix" in by_name["CounterWithoutTotal"]["findings"][0]["message"]
    assert "'model_nmae'" in by_name["TypoInLabelName"]["findings"][0]["message"]
    unclosed = by_name["UnclosedParenthesis"]["findings"][0]["message"]
    assert unclosed.startswith("promtool check rules: could not parse expression")
    assert "unclosed left parenthesis" in unclosed
    template = by_name["BrokenAnnotationTemplate"]["findings"][0]["message"]
    assert 'annotation "summary"' in template
    assert report["summary"] == {
        "rules": 13,
        "can_fire": 4,
        "can_never_fire": 9,
        "findings": 9,
    }
    assert report["targets"][0]["kind"] == "metrics-endpoint"

    # The same /metrics saved to a file gives the same findings, offline.
    saved = tmp_path / "metrics.txt"
    saved.write_text(httpx.get(f"{sim.base}/metrics").text)
    offline = alerts("lint", SEEDED, "--metrics-file", saved, "--format", "json")
    assert offline.returncode == 1, offline.stderr
    assert findings(report_of(offline)) == SEEDED_FINDINGS

    # For people: a table naming each rule that can never fire, its file:group and fix.
    table = alerts("lint", SEEDED, "--target", f"{sim.base}/metrics")
    assert table.returncode == 1, table.stderr
    rows = [line for line in table.stdout.splitlines() if "seeded-mistakes.yml:" in line]
    for name, found in SEEDED_FINDINGS.items():
        assert len([row for row in rows if f" {name} " in row]) == len(found), name
    assert all("seeded-mistakes.yml:lint-seeded" in row for row in rows)
    renamed = next(row for row in rows if " RenamedKVCacheMetric " in row)
    assert "unknown-metric: no target exposes vllm:gpu_cache_usage_perc" in renamed
    assert renamed.rstrip(" │").endswith("vllm:kv_cache_usage_perc")
    assert "13 rules checked: 4 can fire, 9 can never fire" in table.stdout
    assert f"target {sim.base}/metrics: a /metrics endpoint" in table.stderr


def test_a_team_prometheusrule_file_that_can_fire_reports_nothing(sim: Sim) -> None:
    require_binary("promtool")
    team = LINT_RULES / "team-rules.yaml"  # two PrometheusRule documents
    result = alerts("lint", team, "--target", f"{sim.base}/metrics", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = report_of(result)
    assert findings(report) == {
        "job:vllm_request_success:rate5m": [],
        "InferenceRequestsAborted": [],
        "InferenceMetricsMissing": [],
        "InferenceQueueGrowing": [],
    }
    assert {rule["group"] for rule in report["rules"]} == {
        "inference-recording",
        "inference-alerts",
    }


# -- (b) the bundled rules against the local tier's targets ------------------------------


@dataclass
class _Memory:
    used: int
    free: int


@dataclass
class _Utilization:
    gpu: int


class _OneGpuNvml:
    """NVML's calls as DcgmCollector makes them, for one 80 GiB GPU."""

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802 - NVML's names
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        return "GPU-00000000-0000-0000-0000-000000000000"

    def nvmlDeviceGetName(self, handle: int) -> bytes:  # noqa: N802
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> _Memory:  # noqa: N802
        return _Memory(used=2**30, free=79 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> _Utilization:  # noqa: N802
        return _Utilization(gpu=3)


def _dcgm_collector() -> Any:
    from gameday.observe.nvml import DcgmCollector, nvml_device_count

    if nvml_device_count() > 0:
        return DcgmCollector()
    collector = DcgmCollector.__new__(DcgmCollector)
    collector.nvml = _OneGpuNvml()
    collector.hostname = "lint-test"
    return collector


@pytest.fixture
def local_exporters() -> Iterator[dict[str, str]]:
    """The local target's kube-state-metrics and dcgm-exporter stand-ins, as it runs them."""
    # The server was OOM killed once and restarted: the state after MEMORY001.
    after_oom = ContainerState(
        restarts=1,
        running=True,
        ready=True,
        waiting_reason=None,
        last_terminated_reason="OOMKilled",
        last_exit_code=137,
    )
    ksm = MetricsExporter()
    ksm.add(ContainerStateCollector("gameday-local", "lint-test-0", "server", lambda: after_oom))
    gpu = MetricsExporter()
    gpu.add(_dcgm_collector())
    ksm.start(free_port())
    gpu.start(free_port())
    try:
        yield {
            "kube-state-metrics": f"http://127.0.0.1:{ksm.port}/metrics",
            "dcgm-exporter": f"http://127.0.0.1:{gpu.port}/metrics",
        }
    finally:
        ksm.stop()
        gpu.stop()


def _exporter_of(metric: str) -> str:
    if metric.startswith(("vllm:", "http_")):
        return "inference"
    if metric.startswith("kube_"):
        return "kube-state-metrics"
    if metric.startswith("DCGM_"):
        return "dcgm-exporter"
    assert metric == "up", metric
    return "prometheus"


def test_bundled_rules_report_nothing_against_the_local_tier(
    sim: Sim, local_exporters: dict[str, str]
) -> None:
    require_binary("promtool")
    urls = {"inference": f"{sim.base}/metrics", **local_exporters, "prometheus": ""}
    targets = [arg for key, url in urls.items() if url for arg in ("--target", url)]
    result = alerts("lint", *bundled_rule_files(), *targets, "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = report_of(result)

    alerts_in_files = {rule.name for rule in alert_rules(load_bundled_rules())}
    assert {rule["name"] for rule in report["rules"]} == alerts_in_files
    assert report["summary"]["findings"] == 0
    assert report["summary"]["can_never_fire"] == 0
    assert report["promtool"]

    checked: dict[tuple[str, str], str] = {}
    for rule in report["rules"]:
        assert rule["selectors"], rule["name"]
        for selector in rule["selectors"]:
            metric = selector["metric"]
            where = urls[_exporter_of(metric)] or "Prometheus itself"
            assert selector["found_in"] == [where], (rule["name"], metric)
            for matcher, verdict in selector["matchers"].items():
                checked[(rule["name"], matcher)] = verdict
    # Every label matcher was checked against real series, but for two: `job` is given
    # by Prometheus' scrape configuration, and no request has failed with a 5xx yet.
    assert {key: v for key, v in checked.items() if v != "ok"} == {
        ("InferenceTargetDown", 'job="inference"'): "unchecked",
        ("ModelInferenceFailure", 'status="5xx"'): "known",
    }
    assert {key for key, v in checked.items() if v == "ok"} == {
        ("ModelInferenceFailure", 'handler=~"/v1/(chat/)?completions"'),
        ("InferenceServerOOMKilled", 'reason="OOMKilled"'),
        ("InferenceServerCrashLooping", 'reason="CrashLoopBackOff"'),
    }


def test_the_simulator_alone_leaves_the_container_and_gpu_alerts_unable_to_fire(
    sim: Sim,
) -> None:
    require_binary("promtool")
    result = alerts("lint", *bundled_rule_files(), "--target", f"{sim.base}/metrics")
    assert result.returncode == 1, result.stderr
    json_result = alerts(
        "lint", *bundled_rule_files(), "--target", f"{sim.base}/metrics", "--format", "json"
    )
    report = report_of(json_result)
    never = {rule["name"]: rule["findings"] for rule in report["rules"] if not rule["can_fire"]}
    assert set(never) == {
        "InferenceServerOOMKilled",
        "InferenceServerRestarting",
        "InferenceServerCrashLooping",
        "GPUMemoryPressure",
    }
    missing = {f["metric"] for found in never.values() for f in found}
    assert {f["kind"] for found in never.values() for f in found} == {"unknown-metric"}
    assert missing == {
        "kube_pod_container_status_last_terminated_reason",
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_status_waiting_reason",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
    }


# -- (c) a Prometheus server ------------------------------------------------------------


@pytest.fixture
def prometheus(sim: Sim, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the simulator every second as job "inference"."""
    binary = require_binary("prometheus")
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: inference\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{sim.port}']}}]\n"
    )
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def scraped() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{log.read_text()}")
        try:
            answer = httpx.get(
                f"{base}/api/v1/series", params={"match[]": "vllm:num_requests_waiting"}
            )
        except httpx.TransportError:
            return False
        return answer.status_code == 200 and bool(answer.json()["data"])

    try:
        wait_until(scraped, 30, "Prometheus to scrape the simulator")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_prometheus_server_is_linted_through_its_api(prometheus: str) -> None:
    require_binary("promtool")
    serving = next(p for p in bundled_rule_files() if p.name == "serving.yml")
    server_rules = LINT_RULES / "server-mistakes.yml"
    result = alerts("lint", serving, server_rules, "--target", prometheus, "--format", "json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = report_of(result)
    assert report["targets"][0]["kind"] == "prometheus"
    assert findings(report) == {
        "ModelInferenceFailure": [],
        "InferenceTargetDown": [],
        "JobNameTypo": [("label-value", 'job="inference"')],
        "WaitingRequestsPerInstance": [],
    }
    verdicts = {
        (rule["name"], matcher): verdict
        for rule in report["rules"]
        for selector in rule["selectors"]
        for matcher, verdict in selector["matchers"].items()
    }
    # A server knows its job labels: checked, not passed over.
    assert verdicts[("InferenceTargetDown", 'job="inference"')] == "ok"
    assert verdicts[("WaitingRequestsPerInstance", 'job="inference"')] == "ok"


# -- (d) nothing listening --------------------------------------------------------------


def test_an_unreachable_target_exits_3_with_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    result = alerts("lint", SEEDED, "--target", url)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"error: --target {url}: cannot reach it: [Errno 111] Connection refused"
    ]
