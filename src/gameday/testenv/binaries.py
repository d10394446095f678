"""The kwok tier's binaries: built from the Go module proxy by ``testenv/build.sh``, cached.

The build script keys its cache by the pinned versions and prints the bin directory
as its last line; a warm cache answers in about a second. ``GAMEDAY_TESTENV_BIN``
points at a directory of prebuilt binaries instead (a user's own, say).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gameday.core.errors import ComponentMissing

__all__ = ["BINARIES", "ensure_binaries", "testenv_source"]

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "kwokctl",
    "kube-state-metrics",
)
BUILD_TIMEOUT = 90 * 60.0


def testenv_source() -> Path:
    """The repository's ``testenv/`` folder (Go module, build script, stages, manifests)."""
    configured = os.environ.get("GAMEDAY_TESTENV_SRC")
    candidates = [Path(configured)] if configured else []
    candidates += [Path(__file__).resolve().parents[3] / "testenv", Path.cwd() / "testenv"]
    for candidate in candidates:
        if (candidate / "build.sh").is_file():
            return candidate
    raise ComponentMissing(
        "the kwok tier needs the testenv/ folder of an llm-gameday checkout "
        "(set GAMEDAY_TESTENV_SRC to it)"
    )


def _complete(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in BINARIES)


def ensure_binaries(*, build: bool = True) -> Path:
    """The directory holding every binary; builds them (or reuses the cache) if needed."""
    configured = os.environ.get("GAMEDAY_TESTENV_BIN")
    if configured:
        bin_dir = Path(configured)
        if not _complete(bin_dir):
            missing = [n for n in BINARIES if not os.access(bin_dir / n, os.X_OK)]
            raise ComponentMissing(f"GAMEDAY_TESTENV_BIN={bin_dir} lacks {', '.join(missing)}")
        return bin_dir
    if shutil.which("go") is None:
        raise ComponentMissing("building the kwok tier needs Go (1.26 or later) on PATH")
    script = testenv_source() / "build.sh"
    if not build:
        raise ComponentMissing("the kwok tier's binaries are not built: run testenv/build.sh")
    result = subprocess.run(
        ["bash", str(script)],
        stdout=subprocess.PIPE,
        stderr=None,  # the build's progress goes straight to the user
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise ComponentMissing(f"{script} failed (exit {result.returncode}); see its output above")
    bin_dir = Path(lines[-1])
    if not _complete(bin_dir):
        raise ComponentMissing(f"{script} reported {bin_dir}, which lacks some binaries")
    return bin_dir
