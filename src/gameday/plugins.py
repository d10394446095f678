"""Built-in extensions, and the scenario catalog they make up together with plugins."""

from __future__ import annotations

import importlib

from gameday.assertions.base import expectations
from gameday.injectors.base import faults
from gameday.scenario.model import Catalog
from gameday.targets.base import targets

__all__ = ["BUILTIN_MODULES", "catalog", "load_builtins"]

BUILTIN_MODULES = (
    "gameday.targets.local.target",
    "gameday.targets.kubernetes.target",
    "gameday.targets.kubernetes.undo",  # its undo kinds, for `gameday cleanup`
    "gameday.injectors.kubernetes.bad_image_tag",
    "gameday.injectors.kubernetes.gpu_quota",
    "gameday.injectors.kubernetes.gpu_exhaustion",
    "gameday.injectors.kubernetes.gpu_memory_hog",
    "gameday.injectors.kubernetes.pvc_misconfig",
    "gameday.injectors.kubernetes.dns_breakage",
    "gameday.injectors.kubernetes.image_pull_secret_removed",
    "gameday.injectors.kubernetes.oom_kill",
    "gameday.injectors.kubernetes.port_conflict",
    "gameday.targets.kubernetes.objects",  # its undo kinds, for `gameday cleanup`
    "gameday.injectors.kubernetes.crd_schema_drift",
    "gameday.injectors.kubernetes.rbac_denied",
    "gameday.injectors.local.port_conflict",
    "gameday.injectors.local.process_kill",
    "gameday.injectors.local.engine_config",
    "gameday.injectors.local.model_config",
    "gameday.injectors.local.oom_kill",
    "gameday.injectors.local.dns_breakage",
    "gameday.injectors.local.gpu_memory_hog",
    "gameday.injectors.local.model_missing",
    "gameday.injectors.local.model_corrupt",
    "gameday.injectors.load_spike",
    "gameday.assertions.alert",
    "gameday.assertions.load",
    "gameday.assertions.http",
    "gameday.assertions.process",
    "gameday.assertions.log",
    "gameday.assertions.runbook",
    "gameday.assertions.pod",
    "gameday.assertions.event",
    "gameday.assertions.rollout",
    "gameday.assertions.endpoints",
    "gameday.remedies.local.free_port",
    "gameday.remedies.local.raise_memory_limit",
    "gameday.remedies.local.restart_server",
    "gameday.remedies.kubernetes.rollout_undo",
    "gameday.remedies.kubernetes.raise_quota",
    "gameday.remedies.kubernetes.grant_permission",
    "gameday.remedies.kubernetes.raise_memory_limit",
    "gameday.testenv.cluster",  # its undo kind, for `gameday cleanup`
)

_loaded = False


def load_builtins() -> None:
    """Import the built-in targets, faults and expectation kinds (they register themselves)."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    _loaded = True


def catalog() -> Catalog:
    load_builtins()
    return Catalog(
        targets={name: cls.Params for name, cls in targets.items()},
        faults={
            kind: {name: cls.Params for name, cls in faults.for_target(kind).items()}
            for kind in targets.names()
        },
        expectations={name: cls.Params for name, cls in expectations.items()},
    )
