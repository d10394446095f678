"""``python -m gameday.runbooks``: list the catalog; ``--schema`` regenerates its JSON Schema.

python -m gameday.runbooks             # validate the bundled catalog, list its codes
python -m gameday.runbooks --schema    # write catalog.schema.json next to the catalog
python -m gameday.runbooks --print-schema
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gameday.core.errors import GamedayError
from gameday.runbooks import SCHEMA_FILE, catalog_json_schema, load_catalog


def schema_text() -> str:
    """The schema file's exact content."""
    return json.dumps(catalog_json_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_path() -> Path:
    return Path(__file__).resolve().parent / SCHEMA_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gameday.runbooks", description=__doc__)
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--schema", action="store_true", help=f"write {SCHEMA_FILE}")
    what.add_argument("--print-schema", action="store_true", help="print the JSON Schema")
    args = parser.parse_args(argv)
    if args.print_schema:
        sys.stdout.write(schema_text())
        return 0
    if args.schema:
        path = schema_path()
        path.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {path}")
        return 0
    try:
        catalog = load_catalog()
    except GamedayError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    for entry in catalog.entries:
        tiers = ",".join(entry.reproducible.tiers)
        print(f"{entry.code:<24} {entry.category:<12} {tiers:<12} {entry.title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
