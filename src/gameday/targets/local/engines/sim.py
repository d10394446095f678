"""``engine: sim`` — the harness's own vLLM-compatible simulator (``gameday sim serve``)."""

from __future__ import annotations

import sys

from gameday import __version__
from gameday.targets.local.engines.base import (
    Engine,
    EngineLaunch,
    EngineStatus,
    ServerSpec,
    engines,
)

__all__ = ["SimEngine"]


@engines.register("sim")
class SimEngine(Engine):
    name = "sim"
    summary = "the harness's simulator of vLLM (a real server process; starts in about a second)"
    ready_timeout = 60.0

    @classmethod
    def status(cls) -> EngineStatus:
        return EngineStatus(cls.name, True, __version__, sys.executable)

    @classmethod
    def command(cls, server: ServerSpec, launch: EngineLaunch) -> list[str]:
        command = ["gameday", "sim", "serve", "--host", launch.host, "--port", str(launch.port)]
        if launch.model_dir is not None:
            command += ["--model-dir", str(launch.model_dir)]
        return command + server.args + server.engine_args.get(cls.name, [])
