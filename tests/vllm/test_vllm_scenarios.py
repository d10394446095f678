"""The bundled local scenarios against the real vLLM (CPU), through the real CLI.

Each runs with ``--engine vllm``, unchanged: its deadlines written with ``startup`` follow
vLLM's measured start-up. Each must pass with its diagnosis asserted, undo every change,
and leave no engine process (by cgroup and by /proc), no /dev/shm segment and no
temporary file behind.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from gameday.core.cgroup import MemoryCgroup
from gameday.core.journal import outstanding_undos
from gameday.core.processes import find_processes
from gameday.plugins import load_builtins
from tests.e2e.conftest import REPO, SCENARIOS, assert_diagnosed_as_named, gameday
from tests.e2e.test_interrupts import journal_records, run_id_of, start_run, wait_for
from tests.support.cleanup import gameday_cleanup
from tests.vllm.conftest import ENGINE_TIMINGS

pytestmark = [pytest.mark.vllm, pytest.mark.e2e]

TIMEOUT = 900  # a scenario with a few vLLM starts on a loaded two-core machine


def shm_entries() -> set[str]:
    return set(os.listdir("/dev/shm"))


def engine_processes(run_id: str) -> list[str]:
    """Processes of the run, found in /proc by what cannot be renamed away: a command line
    naming the run's scratch folder, or vLLM's own process names (VLLM::EngineCore...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            comm = (entry / "comm").read_text().strip()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "Z":
            continue  # dead, its parent (init, once orphaned) not having reaped it yet
        if f"gameday-{run_id}" in cmdline or comm.startswith("VLLM::"):
            found.append(f"{entry.name} {comm} {cmdline[:120]}")
    return found


def assert_nothing_left(run_dir: Path, scenario: str, shm_before: set[str]) -> None:
    run_id = run_dir.name
    load_builtins()  # the undo kinds
    assert outstanding_undos(run_dir / "journal.jsonl") == []
    assert not MemoryCgroup.path_for(f"gameday-{run_id}-{scenario}").exists()
    assert find_processes(run_id + ".", prefix=True) == []
    assert engine_processes(run_id) == []
    assert shm_entries() - shm_before == set()
    assert not list(Path("/tmp").glob(f"gameday-{run_id}-*"))


def engine_of(report: dict[str, Any]) -> str:
    (scenario,) = report["scenarios"]
    return str(scenario["spec"]["target"]["local"]["server"]["engine"])


def assert_killed_as_a_container(run_dir: Path) -> None:
    """vLLM's EngineCore and Worker outlive a killed API server and hold its pipes: the
    supervisor kills them with it and records the exit when the main process is reaped."""
    records = [r for r in journal_records(run_dir.parent) if r.get("record") == "event"]
    notes = [r["message"] for r in records if r.get("event") == "Note"]
    # the first kill hits a serving vLLM: its engine processes were left, and were killed
    assert any("left in its container" in n for n in notes), notes
    exits = [r for r in records if r.get("event") == "ProcessExited" and r["signal"] == "SIGKILL"]
    assert len(exits) >= 3
    started = [r for r in records if r.get("event") == "ProcessStarted"]
    # each kill's exit is recorded before the restart it causes; with the pipe readers
    # waited for, the first came 10 s late, after a restart the backoff had allowed at 2 s
    for exited, restarted in zip(exits, started[1:], strict=False):
        assert exited["ts"] <= restarted["ts"]
        assert restarted["ts"] - exited["ts"] < 9


def run_on(engine: str, scenario: str, tmp_path: Path) -> dict[str, Any]:
    run = gameday(
        "run",
        str(REPO / "scenarios" / f"{scenario}.yaml"),
        "--engine",
        engine,
        "--no-live",
        report_dir=tmp_path / engine,
        timeout=TIMEOUT,
    )
    assert run.code == 0, f"{scenario} on {engine}: " + run.stderr[-6000:]
    report = run.report
    assert engine_of(report) == engine
    (result,) = report["scenarios"]
    assert result["outcome"] == "passed", result["reason"]
    assert all(e["outcome"] == "passed" for e in result["expectations"])
    assert_diagnosed_as_named(result)
    result["run_dir"] = str(run.run_dir)
    return result  # type: ignore[no-any-return]


BOTH_ENGINES = [
    *(f"local/{name}" for name in ("port-conflict", "process-kill", "oom-kill")),
    *(f"local/{name}" for name in ("model-missing", "model-corrupt", "load-spike")),
    *(f"local/{name}" for name in ("model-weights-missing", "model-header-broken")),
    # vLLM's own start-up failures, which the simulator models too
    *(f"vllm/{name}" for name in ("max-model-len", "kv-cache-too-small")),
    *(f"vllm/{name}" for name in ("lora-adapter-missing", "remote-code")),
]
"""Every local scenario but dns-breakage (the simulator's upstream check: vLLM resolves
no name while it serves) and gpu-memory-hog (needs an NVIDIA GPU)."""


@pytest.mark.parametrize("scenario", BOTH_ENGINES)
def test_bundled_scenario_passes_on_both_engines_alike(scenario: str, tmp_path: Path) -> None:
    """The same file on the simulator and on vLLM: both pass, every expectation with the
    same outcome, the same diagnosis first; how far their timings differ is reported."""
    shm_before = shm_entries()
    on_vllm = run_on("vllm", scenario, tmp_path)
    assert_nothing_left(Path(on_vllm["run_dir"]), on_vllm["name"], shm_before)
    if scenario == "local/process-kill":
        assert_killed_as_a_container(Path(on_vllm["run_dir"]))
    on_sim = run_on("sim", scenario, tmp_path)
    outcomes = {
        engine: [(e["phase"], e["description"], e["outcome"]) for e in r["expectations"]]
        for engine, r in (("sim", on_sim), ("vllm", on_vllm))
    }
    assert outcomes["sim"] == outcomes["vllm"]
    assert on_sim["diagnosis"][0]["code"] == on_vllm["diagnosis"][0]["code"]
    ENGINE_TIMINGS.append(
        (
            scenario,
            {
                engine: (
                    r["time_to_detect_s"],
                    r["time_to_recover_s"],
                    r["finished_at"] - r["started_at"],
                )
                for engine, r in (("sim", on_sim), ("vllm", on_vllm))
            },
        )
    )


def test_kill_9_mid_fault_then_cleanup_leaves_no_engine_behind(tmp_path: Path) -> None:
    shm_before = shm_entries()
    reports, state = tmp_path / "reports", tmp_path / "state"
    harness = start_run(reports, state, SCENARIOS / "process-kill.yaml", "--engine", "vllm")
    wait_for(
        reports,
        harness,
        lambda r: r.get("event") == "ProcessExited" and r.get("signal") == "SIGKILL",
        "the first SIGKILL of the server",
        timeout=600,
    )
    # the restarted vLLM is starting: its processes belong to a harness about to vanish
    wait_for(
        reports,
        harness,
        lambda r: r.get("event") == "ProcessStarted" and r.get("attempt") == 2,
        "the server's restart",
        timeout=120,
    )
    harness.send_signal(signal.SIGKILL)
    harness.communicate(timeout=30)
    run_id = run_id_of(reports)
    assert engine_processes(run_id), "the engine should still be running before cleanup"

    cleanup = gameday_cleanup(state)
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert f"run {run_id}" in cleanup.stdout
    assert_nothing_left(next(reports.iterdir()), "process-kill", shm_before)
