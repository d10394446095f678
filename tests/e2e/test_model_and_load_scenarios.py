"""model-missing, model-corrupt and load-spike, for real, through the CLI.

The model scenarios run on a model directory the test owns (the tiny Llama of ``gameday
model make-tiny``, the bundled file with ``server.model.path`` pointing at it), so that
after the run the test can check that every file is back byte for byte. load-spike runs
as bundled.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from gameday.core.journal import outstanding_undos
from gameday.plugins import load_builtins
from tests.e2e.conftest import SCENARIOS, Run, assert_diagnosed_as_named, check_report, gameday
from tests.e2e.test_local_scenarios import assert_fired_and_resolved
from tests.support.models import SHARD_1, tiny_model

GENERATED_MODEL = "model: {shards: 2}"


def sha256_of_every_file(model_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model_dir.iterdir()}


def assert_passed(run: Run) -> dict[str, Any]:
    assert run.code == 0, run.stderr[-4000:]
    report = run.report
    assert report["outcome"] == "passed"
    (result,) = report["scenarios"]
    assert result["outcome"] == "passed", result["reason"]
    failed = [e for e in result["expectations"] if e["outcome"] != "passed"]
    assert not failed, failed
    assert result["time_to_detect_s"] is not None and result["time_to_detect_s"] > 0
    assert result["time_to_recover_s"] is not None
    (fault,) = result["faults"]
    assert fault["applied_at"] is not None and fault["reverted_at"] is not None
    assert not fault["errors"], fault["errors"]
    load_builtins()  # the undo kinds
    assert outstanding_undos(run.run_dir / "journal.jsonl") == []  # type: ignore[operator]
    assert result["score"] == 100.0
    assert_diagnosed_as_named(result)
    assert run.run_dir is not None
    check_report(run.run_dir, run.run_dir.parent / "screenshots")
    return result  # type: ignore[no-any-return]


# vLLM 0.32's root causes (shared/notes/real-vllm.md), each followed by this line
ENGINE_FAILED = "RuntimeError: Engine core initialization failed. See root cause above."


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("scenario", "error"),
    [
        (
            "model-missing",
            "FileNotFoundError: Weight files referenced in index but missing: {{'{shard}'}}",
        ),
        (
            "model-corrupt",
            "safetensors._safetensors_rust.SafetensorError: Error while deserializing header: "
            "incomplete metadata, file not fully covered",
        ),
    ],
    ids=["model-missing", "model-corrupt"],
)
def test_model_scenario_crash_loops_and_the_file_comes_back_intact(
    scenario: str, error: str, tmp_path: Path
) -> None:
    model_dir = tiny_model(tmp_path / "model", shards=2)
    before = sha256_of_every_file(model_dir)
    text = (SCENARIOS / f"{scenario}.yaml").read_text()
    assert GENERATED_MODEL in text
    path = tmp_path / f"{scenario}.yaml"
    path.write_text(text.replace(GENERATED_MODEL, f"model: {{path: {model_dir}}}"))

    run = gameday("run", str(path), report_dir=tmp_path / "reports")

    result = assert_passed(run)
    for alert in ("InferenceTargetDown", "InferenceServerCrashLooping"):
        assert_fired_and_resolved(run.report, alert)
    shard = model_dir / SHARD_1
    (fault,) = result["faults"]
    assert fault["details"]["file"] == str(shard)
    assert fault["revert_details"] == {"undo 1": f"restored {shard}"}
    # the server's real failure, with its path, and its exit code
    server_log = (run.run_dir / scenario / "server.log").read_text()  # type: ignore[operator]
    root_cause = error.format(shard=shard)
    assert root_cause in server_log
    assert server_log.index(ENGINE_FAILED, server_log.index(root_cause)) > 0
    exits = [p["exit_code"] for p in result["processes"] if p["event"] == "exited"]
    assert exits.count(1) >= 2, exits  # a crash loop, not one failed start
    # restored byte for byte, and nothing of the fault left in the directory
    assert sha256_of_every_file(model_dir) == before


@pytest.mark.e2e
def test_load_spike_fills_the_kv_cache_queues_and_recovers(tmp_path: Path) -> None:
    run = gameday("run", str(SCENARIOS / "load-spike.yaml"), report_dir=tmp_path / "reports")

    result = assert_passed(run)
    for alert in (
        "KVCacheNearlyFull",
        "KVCacheExhausted",
        "InferenceRequestsQueued",
        "HighTimeToFirstToken",
    ):
        assert_fired_and_resolved(run.report, alert)
    (fault,) = result["faults"]
    samples = result["load"]
    during = [s for s in samples if fault["applied_at"] + 3 <= s["t"] <= fault["reverted_at"]]
    after = [s for s in samples if s["t"] >= fault["reverted_at"] + 5]
    # the spike's users came and went; the load was set back to the scenario's own
    assert {s["users"] for s in during} == {256}
    assert after and {s["users"] for s in after} == {8}
    assert max(s["ttft_p95_ms"] or 0 for s in during) > 2000
    assert max(s["ttft_p95_ms"] or 0 for s in after[-3:]) < 200
    assert sum(s["failures"] for s in samples) == 0  # slower, never failing
    # the server never restarted: the load alone did this
    assert [p["event"] for p in result["processes"]] == ["started", "exited"]
