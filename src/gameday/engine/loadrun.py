"""Start the scenario's load: a journaled Locust process whose samples become events."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from gameday.core.changes import ChangeSet
from gameday.core.events import ComponentReady, Event, LoadSampled
from gameday.core.processes import TOKEN_VARIABLE, KillProcesses
from gameday.load import LoadConfig, LoadDriver, LoadSample
from gameday.load.protocol import API_KEY_VARIABLE
from gameday.scenario.model import LoadSpec

__all__ = ["sample_event", "start_load"]


def sample_event(scenario: str, sample: LoadSample) -> LoadSampled:
    """The event of one per-second sample; it happened when its window ended."""
    return LoadSampled(scenario=scenario, ts=sample.t, **dataclasses.asdict(sample))


def start_load(
    spec: LoadSpec,
    scenario: str,
    emit: Callable[[Event], None],
    server: str,
    changes: ChangeSet,
    *,
    api_key: str | None = None,
) -> LoadDriver:
    """Start Locust against ``server`` for ``scenario``, its samples emitted as events; its
    process is journaled (in ``changes``) so cleanup can stop it.

    Stop it with ``driver.stop()`` and then ``changes.revert_all()``, which finds any
    straggler by its token and marks the record undone."""
    token = f"{changes.run_id}.load.{time.monotonic_ns()}"
    changes.record(
        KillProcesses(token=token, name="locust", command=["python", "-m", "gameday.load.runner"])
    )
    driver = LoadDriver(
        LoadConfig.from_spec(spec, host=server),
        lambda sample: emit(sample_event(scenario, sample)),
        # the key in the environment, not the config: a config is read back in reports
        env={TOKEN_VARIABLE: token, **({API_KEY_VARIABLE: api_key} if api_key else {})},
    )
    driver.start()
    emit(
        ComponentReady(
            scenario=scenario,
            component="locust",
            url=server,
            pid=driver.pid,
            detail=f"{spec.users} users, {spec.profile}, stream={spec.stream}, headless",
        )
    )
    return driver
