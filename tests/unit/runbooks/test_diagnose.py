"""The diagnoser: ranking rules on small event streams, then the recorded real runs.

The journals under tests/data/journals/ are the event streams of the bundled local
scenarios, recorded from real runs (simulator, Prometheus, Alertmanager, Locust, the
kernel's OOM killer, a network namespace with dnsmasq); see its README.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from gameday.core.events import (
    AlertChanged,
    Event,
    FaultApplied,
    LoadSampled,
    LogLine,
    PhaseStarted,
    ProcessBackoff,
    ProcessExited,
)
from gameday.runbooks import load_catalog
from gameday.runbooks.diagnose import (
    CAUSE_WEIGHT,
    SHARED_WEIGHT,
    Confusion,
    Diagnoser,
    diagnose_events,
    diagnose_journal,
)
from tests.support.cli import run_gameday

from .conftest import REPO

CATALOG = load_catalog()
JOURNALS = REPO / "tests" / "data" / "journals"
T0 = 1_800_000_000.0


def log(t: float, line: str) -> LogLine:
    return LogLine(ts=T0 + t, scenario="s", source="server", stream="stderr", line=line)


def exited(t: float, code: int, reason: str, sig: str | None = None) -> ProcessExited:
    return ProcessExited(
        ts=T0 + t,
        scenario="s",
        process="server",
        pid=1,
        exit_code=code,
        signal=sig,
        reason=reason,
        restarts=0,
    )


def load_errors(t: float, **errors: int) -> LoadSampled:
    return LoadSampled(
        ts=T0 + t,
        scenario="s",
        t=T0 + t,
        users=8,
        requests=10,
        failures=sum(errors.values()),
        rps=10.0,
        error_ratio=1.0,
        p50_ms=None,
        p95_ms=None,
        ttft_p50_ms=None,
        ttft_p95_ms=None,
        output_tokens=0,
        errors=tuple(errors.items()),
    )


def firing(t: float, alert: str, source: str = "prometheus") -> AlertChanged:
    return AlertChanged(ts=T0 + t, scenario="s", alert=alert, state="firing", source=source)


def ranking(*events: Event) -> list[tuple[str, float]]:
    diagnoser = Diagnoser(CATALOG)
    diagnoser.feed(events)
    return [(d.code, d.score) for d in diagnoser.ranking()]


def test_the_error_line_that_names_the_cause_outranks_the_symptoms() -> None:
    ranked = ranking(
        exited(0.1, 1, "Error"),
        log(0.2, "OSError: [Errno 98] Address already in use"),
        ProcessBackoff(ts=T0 + 0.3, scenario="s", process="server", delay=1.0, restarts=1),
        load_errors(1.0, ConnectionRefusedError=20),
        firing(2.0, "InferenceTargetDown"),
        firing(2.0, "InferenceServerCrashLooping"),
    )
    codes = [code for code, _ in ranked]
    assert codes[0] == "PortInUse"
    assert {"CrashLoopBackOff", "NETWORK001"} <= set(codes[1:])
    # the cause's line is PortInUse's alone; the exit code 1 that many entries share
    # adds a fraction of a shared symptom's weight
    assert CAUSE_WEIGHT < ranked[0][1] < CAUSE_WEIGHT + SHARED_WEIGHT


def test_a_shared_symptom_alone_diagnoses_nothing() -> None:
    assert ranking(load_errors(1.0, **{"HTTP 503": 40}), exited(2.0, 1, "Error")) == []


def test_a_signal_several_entries_explain_is_shared_between_them() -> None:
    ranked = dict(ranking(load_errors(1.0, ConnectionRefusedError=5)))
    # NETWORK001 and ServerNotRunning both name the load's ConnectionRefusedError
    assert ranked == {"NETWORK001": 0.5, "ServerNotRunning": 0.5}


def test_a_signature_counts_once_however_often_it_matched() -> None:
    once = ranking(log(0.1, "OSError: [Errno 98] Address already in use"))
    seven = ranking(*(log(t, "OSError: [Errno 98] Address already in use") for t in range(7)))
    assert once == seven


def test_alerts_count_when_prometheus_fires_them_not_when_alertmanager_relays_them() -> None:
    assert ranking(firing(1.0, "InferenceServerOOMKilled", source="alertmanager")) == []
    assert ranking(firing(1.0, "InferenceServerOOMKilled")) == [("MEMORY001", 1.0)]


def test_a_planned_stop_is_not_evidence() -> None:
    planned = ProcessExited(
        ts=T0,
        scenario="s",
        process="server",
        pid=1,
        exit_code=137,
        signal="SIGKILL",
        reason="Error",
        restarts=0,
        expected=True,
    )
    assert ranking(planned) == []
    assert ranking(exited(0.0, 137, "Error", "SIGKILL"))[0][0] == "ContainerRestarts"


def test_the_gpu_hog_failure_is_diagnosed_as_runtime001() -> None:
    """Not recorded (no GPU where the journals were made): the lines the simulator's GPU
    mode prints, built with its own function, and the exit the supervisor reports."""
    from gameday.sim.memory import GpuMemory, check_free_memory

    gib = 2**30
    with pytest.raises(ValueError) as refused:
        check_free_memory(GpuMemory(index=0, name="H100", free=2 * gib, total=80 * gib), 0.9)
    ranked = ranking(
        log(0.1, f"ValueError: {refused.value}"),
        exited(0.2, 1, "Error"),
        firing(3.0, "GPUMemoryPressure"),
    )
    assert ranked[0][0] == "RUNTIME001", ranked


def test_first_on_top_is_when_the_code_began_to_lead() -> None:
    diagnoser = Diagnoser(CATALOG)
    diagnoser.feed(
        [
            ProcessBackoff(ts=T0 + 1, scenario="s", process="server", delay=1.0, restarts=1),
            firing(2.0, "InferenceServerCrashLooping"),
            log(
                5.0,
                "FileNotFoundError: Weight files referenced in index but missing: "
                "{'/m/model-00001-of-00002.safetensors'}",
            ),
        ]
    )
    assert diagnoser.first_on_top("CrashLoopBackOff", since=T0) == T0 + 1
    assert diagnoser.first_on_top("InferenceModelLoading", since=T0) == T0 + 5
    assert diagnoser.first_on_top("MEMORY001", since=T0) is None
    # a window that ends before the load error never sees it
    assert diagnoser.first_on_top("InferenceModelLoading", since=T0, until=T0 + 4) is None


def test_the_window_is_the_fault_and_what_it_did_before_the_fix() -> None:
    events: list[Event] = [
        log(0.0, "OSError: [Errno 98] Address already in use"),  # before the fault
        FaultApplied(
            ts=T0 + 1,
            scenario="s",
            fault="f",
            fault_type="oom-kill",
            description="",
            started=T0 + 1,
            offset=1.0,
        ),
        exited(2.0, 137, "OOMKilled", "SIGKILL"),
        PhaseStarted(ts=T0 + 3, scenario="s", phase="remedy"),
        exited(4.0, 137, "Error", "SIGKILL"),  # after the remedy began
    ]
    ranked = diagnose_events(events, "s", CATALOG)
    assert ranked is not None
    assert [d.code for d in ranked] == ["MEMORY001"]
    assert diagnose_events(events[:1], "s", CATALOG) is None  # no fault, no diagnosis


# -- the recorded runs ----------------------------------------------------------------


def recorded() -> list[Path]:
    """The simulator's runs, and the real vLLM's under vllm-<version>/."""
    return sorted(JOURNALS.rglob("*.jsonl"))


def test_recorded_journals_cover_every_bundled_scenario_this_machine_can_run() -> None:
    named = {}
    for path in sorted((REPO / "scenarios").rglob("*.yaml")):
        scenario = yaml.safe_load(path.read_text())
        named[scenario["metadata"]["name"]] = scenario["metadata"]["runbook"]
    recorded_names = {path.stem for path in recorded()}
    # the GPU scenario needs an NVIDIA GPU, which the machine that recorded these lacks
    assert recorded_names == set(named) - {"gpu-memory-hog"}
    results = {r.scenario: r for path in recorded() for r in diagnose_journal(path, CATALOG)}
    assert {name: r.expected for name, r in results.items()} == {
        name: code for name, code in named.items() if name in recorded_names
    }


@pytest.mark.parametrize("journal", recorded(), ids=lambda p: str(p.relative_to(JOURNALS)))
def test_each_recorded_run_is_diagnosed_as_the_code_its_scenario_names(journal: Path) -> None:
    (result,) = diagnose_journal(journal, CATALOG)
    assert result.expected is not None
    assert result.top == result.expected, [d.summary() for d in result.ranking]
    top = result.ranking[0]
    assert any(e.specific for e in top.evidence)
    # the leader leads: a symptom every failure shows never ties with the cause
    if len(result.ranking) > 1:
        assert top.score > result.ranking[1].score


def test_the_confusion_table_over_every_reproduced_code_is_diagonal() -> None:
    results = tuple(r for path in recorded() for r in diagnose_journal(path, CATALOG))
    table = Confusion(results)
    assert table.misses() == []
    assert table.diagonal
    assert table.expected == table.diagnosed
    for expected in table.expected:
        for diagnosed in table.diagnosed:
            count = table.count(expected, diagnosed)
            assert (count > 0) == (expected == diagnosed), (expected, diagnosed, count)
    assert len(table.expected) >= 7  # distinct codes, not one code for everything


def gameday(*args: str) -> subprocess.CompletedProcess[str]:
    return run_gameday(*args, timeout=120)


def test_diagnose_prints_the_confusion_table_and_exits_0_when_diagonal() -> None:
    result = gameday("diagnose", "--confusion", str(JOURNALS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "named (rows) against diagnosed first (columns)" in result.stdout
    for code in ("PortInUse", "MEMORY001", "NETWORK002", "KVCacheExhaustion", "DEPLOYMENT003"):
        assert code in result.stdout


def test_diagnose_exits_1_and_names_the_scenario_diagnosed_otherwise(tmp_path: Path) -> None:
    journal = tmp_path / "relabelled.jsonl"
    lines = []
    for line in (JOURNALS / "port-conflict.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "ScenarioStarted":
            record["runbook"] = "NETWORK001"  # claim the wrong code
        lines.append(json.dumps(record))
    journal.write_text("\n".join(lines) + "\n")
    result = gameday("diagnose", str(journal))
    assert result.returncode == 1
    assert "port-conflict: names NETWORK001, diagnosed PortInUse" in result.stdout
    assert "1. PortInUse" in result.stdout and "[Errno 98] Address already in use" in result.stdout


def test_diagnose_refuses_a_missing_path_with_exit_2(tmp_path: Path) -> None:
    result = gameday("diagnose", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "error: no such journal or folder" in result.stderr
