"""Engines the local target can serve with: ``sim``, ``vllm``, ``command`` (and plugins')."""

from gameday.targets.local.engines import command, sim, vllm
from gameday.targets.local.engines.base import Engine, EngineLaunch, EngineStatus, engines

__all__ = ["Engine", "EngineLaunch", "EngineStatus", "command", "engines", "sim", "vllm"]
