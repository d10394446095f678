"""A mutational fuzz of every kind of file the harness reads, as a user would feed them.

Seeds are the project's own files (bundled scenarios, rule files, the runbook catalog, a kubeconfig,
recorded journals, a report); each case is a seed with a few mutations (bytes flipped,
inserted or cut; lines repeated, dropped or swapped; YAML and JSON constructs spliced in
from a list of the ones that once broke a loader). Each case goes through the very
function the CLI calls for that kind. A case passes when it loads or raises the project's
own input error (``GamedayError``: one located line, exit 2); any other exception is a
failure, grouped by exception type and the innermost frame in ``src/gameday``, and its
input is saved under ``--save`` for the regression corpus.

    .venv/bin/python -m tests.fuzz.fuzz [--cases 10000] [--kind scenario ...] [--seed 1]

Prints, per kind: cases run, distinct failures, the slowest case and the peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from gameday.core.errors import GamedayError  # noqa: E402

CASE_TIMEOUT_S = 10

SPLICES: list[bytes] = [
    b"!!int x",
    b"!!bool maybe",
    b"!!set x",
    b"!!float x",
    b"!!timestamp x",
    b"!!binary @",
    b"!!omap",
    b"!!seq",
    b"!!map",
    b"!!python/object:os.system",
    b"!foo",
    b"&a",
    b"*a",
    b"<<: *a",
    b"<<: [1, 2]",
    b"<<: 1",
    b"%YAML 2.0\n---\n",
    b"%TAG ! tag:x\n",
    b'"\\U0011FFFF"',
    b'"\\ud800"',
    b'"\\x"',
    b"1" * 5000,
    b"1e999",
    b"-0",
    b".nan",
    b"[" * 300,
    b"{" * 300,
    b"? [a, b]\n: x",
    b"\x00",
    b"\xff\xfe",
    b"\xc3",
    b"\t",
    b"\r",
    "\ufeff".encode(),
    b"---",
    b"...",
    b"- ",
    b": ",
    b"#",
    b"|",
    b">-",
    b"null",
    b"~",
    b"{}",
    b"[]",
    b'""',
    b"9" * 30,
    b"1h" * 40,
    b"5m",
    b"0",
    b"-5s",
    b'{"record": "undo", "id": "u1", "action": {"kind": "nope"}}',
    b'{"record": "event", "event": "Nope"}',
    b'{"record": "event"}',
    b"[1, 2]",
    b"{",
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        at = rng.randint(0, len(out))
        if choice < 0.2 and out:
            out[min(at, len(out) - 1)] ^= 1 << rng.randint(0, 7)
        elif choice < 0.5:
            out[at:at] = rng.choice(SPLICES)
        elif choice < 0.6:
            del out[at : at + rng.randint(1, 64)]
        elif choice < 0.7:
            del out[at:]
        else:
            lines = bytes(out).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            op = rng.random()
            if op < 0.4:
                lines.insert(i, lines[j])
            elif op < 0.7 and len(lines) > 1:
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            out = bytearray(b"\n".join(lines))
    return bytes(out)


def _scenario(path: Path) -> None:
    from gameday.engine.plan import check_plan
    from gameday.plugins import catalog
    from gameday.scenario.loader import load_scenario

    check_plan([load_scenario(path, catalog())])


def _rules(path: Path) -> None:
    from gameday.rules import compress, load_rule_file

    compress(load_rule_file(path), 30, 2)


def _catalog(path: Path) -> None:
    from gameday.runbooks import load_catalog

    load_catalog(path)


def _journal(path: Path) -> None:
    from gameday.core.journal import outstanding_undos
    from gameday.plugins import load_builtins
    from gameday.runbooks import load_catalog
    from gameday.runbooks.diagnose import diagnose_journal

    load_builtins()
    outstanding_undos(path)
    diagnose_journal(path, load_catalog())


def _kubeconfig(path: Path) -> None:
    from gameday.targets.kubernetes.cluster import api_client, current_context

    api_client(str(path), current_context(str(path)))  # builds the client; no request


def _report(path: Path) -> None:
    from gameday.reports.compare import load_report

    load_report(path)


KINDS: dict[str, tuple[Callable[[Path], None], str, list[str]]] = {
    "scenario": (_scenario, ".yaml", ["scenarios/local/*.yaml", "scenarios/kubernetes/*.yaml"]),
    "rules": (_rules, ".yml", ["src/gameday/rules/*.yml"]),
    "catalog": (_catalog, ".yaml", ["src/gameday/runbooks/catalog.yaml"]),
    "journal": (
        _journal,
        ".jsonl",
        ["tests/data/journals/port-conflict.jsonl", "tests/data/journals/model-missing.jsonl"],
    ),
    "report": (_report, ".json", ["tests/data/reports/*.json"]),
    "kubeconfig": (_kubeconfig, ".yaml", ["tests/data/kubeconfigs/*.yaml"]),
}


class CaseTimeout(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise CaseTimeout


def signature(error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/src/gameday/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(error).__name__} at {where}"


def fuzz_kind(kind: str, cases: int, rng: random.Random, save: Path | None) -> dict[str, Any]:
    check, suffix, patterns = KINDS[kind]
    seeds = [p.read_bytes() for pattern in patterns for p in sorted(REPO.glob(pattern))]
    if not seeds:
        raise SystemExit(f"no seed files for {kind}: {patterns}")
    failures: dict[str, bytes] = {}
    slowest = (0.0, b"")
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory(prefix="gameday-fuzz-") as scratch:
        # a scenario names files beside it (rules, a model): the case sits where its seed did
        path = Path(scratch) / f"case{suffix}"
        # once, untimed: the first load imports the models and builds the extension
        # catalog, a cost of the process and not of any one case
        path.write_bytes(seeds[0])
        with contextlib.suppress(GamedayError):
            check(path)
        for _ in range(cases):
            data = mutate(rng.choice(seeds), rng)
            path.write_bytes(data)
            started = time.monotonic()
            signal.alarm(CASE_TIMEOUT_S)
            try:
                check(path)
            except GamedayError:
                pass
            except CaseTimeout:
                failures.setdefault(f"timeout over {CASE_TIMEOUT_S}s", data)
            except (Exception, RecursionError) as error:
                failures.setdefault(signature(error), data)
            finally:
                signal.alarm(0)
            took = time.monotonic() - started
            if took > slowest[0]:
                slowest = (took, data)
    if save is not None:
        (save / kind).mkdir(parents=True, exist_ok=True)
        # the slowest input too, to find what makes a case slow
        (save / kind / f"slowest{suffix}").write_bytes(slowest[1])
        for number, (name, data) in enumerate(sorted(failures.items())):
            folder = save / kind
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"found-{number:02d}{suffix}").write_bytes(data)
            (folder / f"found-{number:02d}.why").write_text(name + "\n")
    return {"cases": cases, "failures": failures, "slowest": slowest[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per kind")
    parser.add_argument("--kind", action="append", choices=sorted(KINDS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", type=Path, help="write each failing input here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"{'kind':10} {'cases':>7} {'failures':>9} {'slowest':>8} {'peak RSS':>9} {'took':>7}")
    failed = 0
    for kind in args.kind or list(KINDS):
        started = time.monotonic()
        result = fuzz_kind(kind, args.cases, rng, args.save)
        took = time.monotonic() - started
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{kind:10} {result['cases']:7} {len(result['failures']):9} "
            f"{result['slowest']:7.2f}s {rss:7.0f}MB {took:6.0f}s",
            flush=True,
        )
        for name in sorted(result["failures"]):
            print(f"  {name}")
        failed += len(result["failures"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
