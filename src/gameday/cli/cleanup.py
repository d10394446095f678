"""`gameday cleanup`: revert what a killed run left behind, from its journal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from gameday.cli.common import (
    err,
    out,
    print_error,
)
from gameday.core.errors import ExitCode

if TYPE_CHECKING:
    from gameday.core.journal import PendingUndo

__all__ = ["cleanup"]


def cleanup(
    journal: Annotated[
        Path | None, typer.Option("--journal", help="Revert what this journal left applied.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also clean runs whose harness still seems alive.")
    ] = False,
    list_only: Annotated[
        bool,
        typer.Option("--list", "--dry-run", help="Show what would be reverted; change nothing."),
    ] = False,
) -> None:
    """Revert what a killed run left behind, from its journal.

    Processes it started, ports it held, files it moved, limits it lowered. Without
    --journal: every registered run whose harness died. Each record is reverted on its
    own, newest first: one that cannot be read (another version's, a plugin's not
    installed here) or whose revert fails is named, and every other one is still
    reverted. Exit 0: nothing is left; 1: something is left (listed at the end)."""
    from gameday.core.journal import active_runs, outstanding_undos, revert_outstanding
    from gameday.plugins import load_builtins

    load_builtins()  # registers the undo kinds
    candidates: list[tuple[str, Path, Path | None]] = []
    if journal is not None:
        if not journal.is_file():
            print_error(f"no such journal: {journal}")
            raise typer.Exit(ExitCode.INVALID)
        candidates.append((journal.parent.name, journal, None))
    else:
        for active in active_runs():
            if active.harness_alive and not force:
                err.print(
                    f"skipping run {active.run_id}: its harness (pid {active.pid}) is still running"
                )
                continue
            candidates.append((active.run_id, active.journal, active.registration))
    if not candidates:
        out.print("nothing to clean up")
        return
    left: list[str] = []
    for run_id, path, registration in candidates:
        if not path.is_file():
            err.print(f"run {run_id}: journal {path} is gone; nothing can be reverted from it")
            if registration is not None and not list_only:
                registration.unlink(missing_ok=True)
            continue
        pending = outstanding_undos(path)
        out.print(f"run {run_id}: {len(pending)} change(s) to revert ({path})", markup=False)
        if list_only:
            for undo in pending:
                out.print(f"  would {undo.action.describe()}  {_undo_label(undo)}", markup=False)
            continue
        failed = 0
        for outcome in revert_outstanding(path, run_id):
            mark = "[green]ok[/green]" if outcome.ok else "[red]FAILED[/red]"
            out.print(f"  {mark} {escape(outcome.message)}  {escape(_undo_label(outcome.undo))}")
            if not outcome.ok:
                failed += 1
                left.append(f"run {run_id} {_undo_label(outcome.undo)}: {outcome.message}")
        if registration is not None and failed == 0:
            registration.unlink(missing_ok=True)
    if left:
        err.print(f"{len(left)} change(s) left in place:", markup=False)
        for line in left:
            err.print(f"  {line}", markup=False)
        raise typer.Exit(ExitCode.FAILED)


def _undo_label(undo: PendingUndo) -> str:
    """``[undo u3 kill-processes, local/process-kill fault/kill]``: which record, in words."""
    from gameday.core.undo import UnreadableUndo

    action = undo.action
    kind = action.recorded_kind if isinstance(action, UnreadableUndo) else action.kind
    where = " ".join(part for part in (undo.scenario, undo.owner) if part)
    return f"[undo {undo.id} {kind}{', ' + where if where else ''}]"
