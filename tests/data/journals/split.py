"""Split a run's journal.jsonl into one file per scenario, keeping only its events.

python tests/data/journals/split.py reports/<run-id>/journal.jsonl tests/data/journals
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(journal: Path, into: Path) -> None:
    by_scenario: dict[str, list[str]] = {}
    for line in journal.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record.get("record") == "event" and record.get("scenario"):
            by_scenario.setdefault(record["scenario"], []).append(
                json.dumps(record, separators=(",", ":"))
            )
    for scenario, lines in by_scenario.items():
        if not any('"event":"FaultApplied"' in line for line in lines):
            continue  # nothing injected (a skipped scenario): nothing to diagnose
        (into / f"{scenario}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{into / f'{scenario}.jsonl'}: {len(lines)} events")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
