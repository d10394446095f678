"""``engine: command`` — any serving command the scenario gives (``server.command``)."""

from __future__ import annotations

from gameday.targets.local.engines.base import (
    Engine,
    EngineLaunch,
    EngineStatus,
    ServerSpec,
    engines,
)

__all__ = ["CommandEngine"]


@engines.register("command")
class CommandEngine(Engine):
    name = "command"
    summary = "the scenario's own command (placeholders {host}, {port}, {model_dir})"
    ready_timeout = 60.0

    @classmethod
    def status(cls) -> EngineStatus:
        return EngineStatus(cls.name, True, None, "", detail="whatever server.command runs")

    @classmethod
    def command(cls, server: ServerSpec, launch: EngineLaunch) -> list[str]:
        assert server.command is not None  # the spec refuses engine: command without one
        values = {"{port}": str(launch.port), "{host}": launch.host}
        if launch.model_dir is not None:
            values["{model_dir}"] = str(launch.model_dir)
        resolved = []
        for arg in [*server.command, *server.args]:
            for placeholder, value in values.items():
                arg = arg.replace(placeholder, value)
            resolved.append(arg)
        return resolved
