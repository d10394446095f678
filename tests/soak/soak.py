"""A kill -9 soak: the harness is SIGKILLed at chosen points of real game days, then
``gameday cleanup`` runs, and the machine is compared with a snapshot taken before.

For each fault of the local tier (one bundled scenario each, on the simulator) and of the
kwok tier (scenarios/kubernetes/FAULT.yaml in a namespace of its own, on a tier the soak
brings up and takes down), each trial starts ``gameday run`` in a process of its own,
follows its journal, and kills the harness (only the harness: its children live on, as
after a real crash) with SIGKILL a random moment after one of these points, chosen among
those the scenario reaches:

    starting   the target coming up (local: its first journaled change; kwok: the up phase)
    applying   the fault's first undo record (written just before the change itself)
    mid-fault  the fault applied
    reverting  the first of the fault's changes reverted
    remedy     a remedy started (scenarios with a remedy)
    stopping   the teardown phase (the target going down)

A trial whose run ended before its point counts as a trial, not as a kill (the table
says how many were killed). Then ``gameday cleanup`` (the run is registered in a private
state dir) and a new snapshot: processes, listening TCP ports, the harness's files under
/tmp and /dev/shm, cgroups, network namespaces and links, mounts, the iptables rules, and
on the kwok tier the cluster's objects field by field (tests/soak/kubernetes.py). A trial
is clean when the snapshot equals the one before. Prints a table: tier, fault, trials,
killed, clean, what was left.

    .venv/bin/python -m tests.soak.soak [--trials 20] [--tier local|kwok] [--fault NAME]
        [--seed 1] [--parallel 3]

Local trials run one at a time (they compare the whole machine). Kwok trials run side by
side (``--parallel`` workers), each in its own namespace, comparing their own processes,
ports, files and the cluster's objects; never two of one fault at once, the GPU faults
one at a time, and a fault that changes what namespaces share (dns-breakage) alone.

Exit 0 when every trial was clean, 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.soak.trial import POINTS, REPO, Plan, Trial, run_trial

# fault -> the bundled scenario that applies it, on the simulator (the vLLM scenarios
# through --engine sim; the local ones name theirs)
SCENARIOS = {
    "process-kill": "scenarios/local/process-kill.yaml",
    "port-conflict": "scenarios/local/port-conflict.yaml",
    "oom-kill": "scenarios/local/oom-kill.yaml",
    "model-missing": "scenarios/local/model-missing.yaml",
    "model-corrupt": "scenarios/local/model-corrupt.yaml",
    "load-spike": "scenarios/local/load-spike.yaml",
    "dns-breakage": "scenarios/local/dns-breakage.yaml",
    "engine-config": "scenarios/vllm/max-model-len.yaml",
    "model-config": "scenarios/vllm/remote-code.yaml",
}
NOT_HERE = {("local", "gpu-memory-hog"): "needs an NVIDIA GPU"}
TIERS = ("local", "kwok")


def scenario_of(tier: str, fault: str) -> Path:
    if tier == "local":
        return REPO / SCENARIOS[fault]
    return REPO / "scenarios" / "kubernetes" / f"{fault}.yaml"


def points_of(fault: str, tier: str = "local") -> list[str]:
    text = scenario_of(tier, fault).read_text()
    return [p for p in POINTS if p != "remedy" or "remedy:" in text]


def kwok_faults() -> list[str]:
    from tests.soak.kubernetes import FAULTS

    return list(FAULTS)


def _local_plan(fault: str) -> Plan:
    # the vLLM scenarios through --engine sim; the local ones name their engine
    engine = ["--engine", "sim"] if SCENARIOS[fault].startswith("scenarios/vllm/") else []
    return Plan(scenario=scenario_of("local", fault), args=engine)


def _table(trials: list[Trial]) -> Iterator[str]:
    yield f"{'tier':<5} {'fault':<26} {'trials':>6} {'killed':>6} {'clean':>6}  left"
    for tier, fault in dict.fromkeys((t.tier, t.fault) for t in trials):
        mine = [t for t in trials if (t.tier, t.fault) == (tier, fault)]
        left = sorted({item for t in mine for item in t.left})
        clean = sum(t.clean for t in mine)
        shown = "; ".join(left[:4]) + (f" (+{len(left) - 4} more)" if len(left) > 4 else "")
        killed = sum(t.killed for t in mine)
        yield f"{tier:<5} {fault:<26} {len(mine):>6} {killed:>6} {clean:>6}  {shown or '—'}"
    tiers = {t.tier for t in trials}
    for (tier, fault), why in NOT_HERE.items():
        if tier not in tiers:
            continue
        yield f"{tier:<5} {fault:<26} {0:>6} {'—':>6} {'—':>6}  not run here: {why}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per fault")
    parser.add_argument("--tier", action="append", choices=TIERS, help="only these tiers")
    parser.add_argument("--fault", action="append", help="only these faults (any tier's)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--parallel",
        type=int,
        default=3,
        help="kwok trials side by side, each in its own namespace (local ones run alone)",
    )
    args = parser.parse_args(argv)
    known = set(SCENARIOS) | set(kwok_faults())
    if unknown := sorted(set(args.fault or []) - known):
        parser.error(f"no such fault: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    print(f"soak: seed {seed} (--seed {seed} repeats these points)", flush=True)
    rng = random.Random(seed)
    trials: list[Trial] = []
    started = time.monotonic()
    for tier in args.tier or TIERS:
        faults = list(SCENARIOS) if tier == "local" else kwok_faults()
        faults = [f for f in faults if not args.fault or f in args.fault]
        planned = _plan_trials(tier, faults, args.trials, rng)
        if tier == "local":
            _soak_local(planned)
        elif planned:
            _soak_kwok(planned, args.parallel)
        trials += planned
    print()
    for line in _table(trials):
        print(line)
    clean = sum(t.clean for t in trials)
    print(f"\n{clean}/{len(trials)} trials clean in {time.monotonic() - started:.0f} s")
    return 0 if clean == len(trials) else 1


def _plan_trials(tier: str, faults: list[str], count: int, rng: random.Random) -> list[Trial]:
    """Each fault's trials: every point in turn (at random when fewer trials than points),
    a random delay after it; drawn before any runs, so --seed repeats them."""
    trials = []
    for fault in faults:
        points = points_of(fault, tier)
        for index in range(count):
            point = points[index % len(points)] if count >= len(points) else rng.choice(points)
            delay = rng.uniform(0, 0.4 if point == "stopping" else 1.5)  # teardown is short
            trials.append(Trial(tier, fault, point, delay))
    return trials


_printing = threading.Lock()


def _said(trial: Trial, number: int) -> None:
    status = "clean" if trial.clean else "LEFT " + "; ".join(trial.left[:3])
    killed = "killed" if trial.killed else "ended before the kill"
    with _printing:
        print(
            f"  {trial.tier} {trial.fault} #{number} at {trial.point}+{trial.delay:.2f}s "
            f"({killed}): {status}",
            flush=True,
        )


def _soak_local(trials: list[Trial]) -> None:
    for number, trial in enumerate(trials, 1):
        with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
            run_trial(trial, _local_plan(trial.fault), Path(scratch))
        _said(trial, number)


def _soak_kwok(trials: list[Trial], parallel: int) -> None:
    """The kwok trials on ``parallel`` workers side by side, each trial in its own
    namespace; tests/soak/kubernetes.py's Scheduler says which may overlap."""
    from tests.soak.kubernetes import KwokSoak, Scheduler

    numbers: dict[int, int] = {}
    seen: dict[str, int] = {}
    for trial in trials:  # each trial's number among its fault's
        seen[trial.fault] = numbers[id(trial)] = seen.get(trial.fault, 0) + 1
    scheduler = Scheduler(trials)

    def worker(kwok: KwokSoak) -> None:
        while (trial := scheduler.take()) is not None:
            try:
                with (
                    tempfile.TemporaryDirectory(prefix="soak-") as scratch,
                    kwok.trial(trial.fault, Path(scratch)) as plan,
                ):
                    run_trial(trial, plan, Path(scratch))
            finally:
                scheduler.done(trial)
            _said(trial, numbers[id(trial)])

    with KwokSoak() as kwok, ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for running in [pool.submit(worker, kwok) for _ in range(max(1, parallel))]:
            running.result()


if __name__ == "__main__":
    sys.exit(main())
