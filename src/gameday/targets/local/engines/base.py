"""What an engine is to the local target: how to start it, how long it may take, where it is.

An engine is a property of the server, not of the tier: the same scenario runs on the
simulator (ours: fast, deterministic), the real vLLM, or any command. Each engine knows
its command line (from the scenario's ``server`` block), the environment it needs, its
start-up budget, and whether this machine can run it — and if not, the command that
installs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from gameday.core.registry import Registry

__all__ = ["Engine", "EngineLaunch", "EngineStatus", "ServerSpec", "engines"]


class ServerSpec(Protocol):
    """What an engine reads of the scenario's ``server`` block (``targets/local/spec.py``
    validates it, checking the engine's name against this registry: a protocol here, so
    the engines need not import the spec that imports them)."""

    @property
    def command(self) -> list[str] | None: ...
    @property
    def args(self) -> list[str]: ...
    @property
    def engine_args(self) -> dict[str, list[str]]: ...


@dataclass(frozen=True)
class EngineStatus:
    """Whether this machine can run the engine, and what it is."""

    name: str
    installed: bool
    version: str | None
    where: str
    """The interpreter, venv or binary it runs from; empty where there is none."""
    install: str | None = None
    """The command that installs it, when it is missing."""
    detail: str = ""


@dataclass(frozen=True)
class EngineLaunch:
    """Where the server will listen and what it is given: the engine's command's inputs."""

    host: str
    port: int
    model_dir: Path | None
    scratch: Path
    """A folder of this run's, removed at teardown: temp files and caches go there."""


class Engine(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    ready_timeout: ClassVar[float]
    """Start-up budget when the scenario sets none: spawn to a 200 from /health."""
    needs_model: ClassVar[bool] = False
    """A model directory is required (the local target makes a tiny one when none is given)."""

    @classmethod
    @abstractmethod
    def status(cls) -> EngineStatus:
        """Cheap (no import of the engine, no process): what ``gameday engines`` prints."""

    @classmethod
    @abstractmethod
    def command(cls, server: ServerSpec, launch: EngineLaunch) -> list[str]:
        """The server's command line; a leading ``gameday`` is this installation's own."""

    @classmethod
    def env(cls, server: ServerSpec, launch: EngineLaunch) -> dict[str, str]:
        """Environment the engine needs, below the scenario's own ``env``."""
        del server
        return {"TMPDIR": str(launch.scratch / "tmp")}


engines: Registry[type[Engine]] = Registry("engine", "gameday.engines")
