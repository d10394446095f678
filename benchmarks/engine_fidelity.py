"""How close the simulator is to the real vLLM, side by side from one run.

1. Serving: the same tiny model (gameday model make-tiny) served by each engine; time
   from spawn to the first 200 from /health; then the same requests to both
   (tests/integration/sim/vllm_surface.py's) and their /metrics compared family by family
   (names, types, label names, fixed label values, buckets, _created series).
2. Failures: each documented start-up failure (tests/data/vllm/record.py's cases: the
   model directory missing, weights missing, a shard missing, a truncated file, a damaged
   header, --max-model-len above the model, a KV cache too small, a missing LoRA adapter,
   a config needing remote code) staged the same way for both engines; the root-cause
   line each prints, and whether they are identical (paths aside).
3. Scenarios: the bundled local scenarios that run on both engines, through
   ``gameday run --engine E``: outcome, time to detect, time to recover, wall time, and
   the peak RSS of the ``gameday run`` process itself (sampled every 0.2 s; Locust,
   Prometheus and the server are processes of their own).

    .venv/bin/python benchmarks/engine_fidelity.py [--no-failures] [--no-scenarios]
        [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.data.vllm.record import ENV, FAILURES, command, free_port, serve, stop  # noqa: E402
from tests.integration.sim.vllm_surface import (  # noqa: E402
    exercise,
    families,
    message_pattern,
    metric_differences,
    root_cause,
)

from gameday.models import make_tiny  # noqa: E402
from gameday.targets.local.engines.vllm import VllmEngine, vllm_venv  # noqa: E402

SCENARIOS = (
    *(f"local/{name}" for name in ("port-conflict", "process-kill", "oom-kill", "load-spike")),
    *(f"local/model-{name}" for name in ("missing", "weights-missing", "corrupt")),
    "local/model-header-broken",
    *(f"vllm/{name}" for name in ("max-model-len", "kv-cache-too-small")),
    *(f"vllm/{name}" for name in ("lora-adapter-missing", "remote-code")),
)
"""The bundled scenarios that run on both engines (tests/vllm's list): every local one but
dns-breakage (the simulator's own upstream check) and gpu-memory-hog (an NVIDIA GPU)."""


def vllm_argv(model: Path, port: int, *extra: str) -> list[str]:
    return command(str(vllm_venv() / "bin" / "vllm"), model, port, *extra)


def sim_argv(model: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gameday",
        "sim",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model-dir",
        str(model),
        *extra,
    ]


def serving(work: Path) -> None:
    model = make_tiny(work / "model")
    answers, ready = {}, {}
    for engine, argv_of in (("vllm", vllm_argv), ("sim", sim_argv)):
        port = free_port()
        proc, ready[engine] = serve(argv_of(model, port), work / f"{engine}.log", port)
        try:
            answers[engine] = exercise(f"http://127.0.0.1:{port}")
        finally:
            stop(proc)
    print("== serving (the same tiny model, the same requests) ==")
    print(f"{'':28} {'vllm':>12} {'sim':>12}")
    print(f"{'time to ready':28} {ready['vllm']:>11.1f}s {ready['sim']:>11.1f}s")
    counts = {}
    for engine, surface in answers.items():
        found = families(surface.metrics)
        vllm_only = [f for f in found if f.startswith("vllm:") and not f.endswith("_created")]
        counts[engine] = (len(vllm_only), len(found))
    print(f"{'vllm: families':28} {counts['vllm'][0]:>12} {counts['sim'][0]:>12}")
    print(f"{'all families (incl. _created)':28} {counts['vllm'][1]:>12} {counts['sim'][1]:>12}")
    differences = metric_differences(answers["vllm"].metrics, answers["sim"].metrics)
    same = counts["vllm"][0] - len({d.split()[2] for d in differences if d.startswith("missing")})
    print(
        f"{'families identical':28} {same:>5}/{counts['vllm'][0]} (names, types, labels, "
        "label values, buckets, _created)"
    )
    for difference in differences:
        print(f"  difference: {difference}")


def run_failure(argv: list[str]) -> tuple[int, float, str]:
    started = time.monotonic()
    result = subprocess.run(
        argv, env={**os.environ, **ENV}, capture_output=True, timeout=300, check=False
    )
    text = (result.stdout + result.stderr).decode(errors="replace")
    return result.returncode, time.monotonic() - started, root_cause(text)


def failures(work: Path) -> None:
    model = make_tiny(work / "pristine")
    print("\n== failures (the same damage, the same flags; the line naming the cause) ==")
    identical = matched = 0
    for case, (damage, extra) in FAILURES.items():
        lines = {}
        for engine, argv_of in (("vllm", vllm_argv), ("sim", sim_argv)):
            copy = work / f"{case}-{engine}"
            if damage is not None:
                shutil.copytree(model, copy)
                damage(copy)
            code, took, line = run_failure(argv_of(copy, free_port(), *extra))
            lines[engine] = (code, took, line.replace(str(copy), "<model>"))
        same = lines["vllm"][2] == lines["sim"][2] and lines["vllm"][0] == lines["sim"][0]
        alike = lines["vllm"][0] == lines["sim"][0] and comparable(lines["vllm"][2]) == comparable(
            lines["sim"][2]
        )
        identical += same
        matched += alike
        verdict = (
            "identical"
            if same
            else "same words, numbers or pydantic's repr aside"
            if (alike)
            else "DIFFERENT"
        )
        print(f"{case}: {verdict}")
        for engine, (code, took, line) in lines.items():
            print(f"  {engine:4} exit {code} after {took:5.1f}s: {line[:200]}")
    print(
        f"failure texts identical: {identical}/{len(FAILURES)}; the same but for numbers "
        f"and the arguments pydantic quotes: {matched}/{len(FAILURES)}"
    )


def comparable(line: str) -> str:
    return message_pattern(line.split(" [type=value_error")[0])


def run_scenario(name: str, engine: str, work: Path) -> dict[str, object]:
    reports = work / f"reports-{engine}-{name.replace('/', '-')}"
    argv = [
        sys.executable,
        "-m",
        "gameday",
        "run",
        str(REPO / "scenarios" / f"{name}.yaml"),
        "--engine",
        engine,
        "--no-live",
        "--report-dir",
        str(reports),
    ]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    peak = [0]

    def sample() -> None:
        try:
            me = psutil.Process(proc.pid)
            while proc.poll() is None:
                peak[0] = max(peak[0], me.memory_info().rss)
                time.sleep(0.2)
        except psutil.NoSuchProcess:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    proc.wait()
    sampler.join()
    (report_path,) = reports.glob("*/report.json")
    (result,) = json.loads(report_path.read_text())["scenarios"]
    return {
        "outcome": result["outcome"],
        "ttd": result["time_to_detect_s"],
        "ttr": result["time_to_recover_s"],
        "wall": time.monotonic() - started,
        "rss": peak[0] / 2**20,
    }


def scenarios(names: list[str], work: Path) -> None:
    print("\n== scenarios (gameday run --engine E; RSS of the gameday run process) ==")
    print(
        f"{'scenario':26} {'engine':6} {'outcome':8} {'detect':>8} {'recover':>8} "
        f"{'wall':>7} {'peak RSS':>9}"
    )
    for name in names:
        for engine in ("sim", "vllm"):
            r = run_scenario(name, engine, work)
            ttd = "-" if r["ttd"] is None else f"{r['ttd']:.1f}s"
            ttr = "-" if r["ttr"] is None else f"{r['ttr']:.1f}s"
            print(
                f"{name:26} {engine:6} {r['outcome']:8} {ttd:>8} {ttr:>8} "
                f"{r['wall']:6.0f}s {r['rss']:7.0f}MB",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-failures", action="store_true")
    parser.add_argument("--no-scenarios", action="store_true")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    args = parser.parse_args()
    VllmEngine.require()
    with tempfile.TemporaryDirectory(prefix="engine-fidelity-") as scratch:
        work = Path(scratch)
        serving(work)
        if not args.no_failures:
            failures(work)
        if not args.no_scenarios:
            scenarios(args.scenario or list(SCENARIOS), work)


if __name__ == "__main__":
    main()
