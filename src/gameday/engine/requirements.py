"""What a scenario needs of the machine, checked before anything is started."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable

from gameday.core.errors import ComponentMissing, PermissionProblem
from gameday.scenario.model import Requirement, Scenario

__all__ = [
    "check_requirements",
    "missing_requirements",
    "nvidia_gpu_present",
    "scenario_requirements",
]


def nvidia_gpu_present() -> str | None:
    """None when NVML finds a GPU, else why not."""
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return f"no NVIDIA GPU ({error})"
    try:
        count = int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()
    return None if count > 0 else "no NVIDIA GPU (NVML found no device)"


def _problem(requirement: Requirement) -> str | None:
    if requirement is Requirement.ROOT:
        return None if os.geteuid() == 0 else "needs root (run it with sudo)"
    if requirement is Requirement.CGROUP_MEMORY:
        from gameday.core.cgroup import memory_cgroup_support

        return memory_cgroup_support()
    if requirement is Requirement.NETNS:
        if os.geteuid() != 0:
            return "network namespaces need root"
        return None if shutil.which("ip") else "the ip command (iproute2) is not installed"
    if requirement is Requirement.DNSMASQ:
        return (
            None
            if shutil.which("dnsmasq")
            else "dnsmasq is not installed (apt-get install dnsmasq-base)"
        )
    return nvidia_gpu_present()


def scenario_requirements(scenario: Scenario) -> set[Requirement]:
    """What the scenario, its target and its faults need of the machine."""
    from gameday.injectors.base import faults
    from gameday.targets.base import targets

    needed = set(scenario.requires)
    needed |= targets.get(scenario.target.kind).requirements(scenario.target.params)
    for fault in scenario.faults:
        needed |= faults.lookup(scenario.target.kind, fault.type).requires
    return needed


def missing_requirements(requirements: Iterable[Requirement]) -> dict[Requirement, str]:
    found = {}
    for requirement in sorted(set(requirements)):
        problem = _problem(requirement)
        if problem:
            found[requirement] = problem
    return found


def check_requirements(requirements: Iterable[Requirement]) -> None:
    missing = missing_requirements(requirements)
    if not missing:
        return
    text = "; ".join(f"{r.value}: {why}" for r, why in missing.items())
    if any(r in (Requirement.ROOT, Requirement.CGROUP_MEMORY, Requirement.NETNS) for r in missing):
        raise PermissionProblem(f"this scenario cannot run here: {text}")
    raise ComponentMissing(f"this scenario cannot run here: {text}")
