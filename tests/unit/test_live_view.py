"""The live status: phase, elapsed and remaining time, load, faults and expectations."""

from __future__ import annotations

import io

from rich.console import Console

from gameday.core.events import (
    AlertChanged,
    ExpectationResolved,
    ExpectationStarted,
    FaultApplied,
    LoadSampled,
    PhaseStarted,
    ScenarioStarted,
)
from gameday.reports.live import LiveView

T0 = 1_800_000_000.0


def draw(view: LiveView, now: float) -> str:
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(view.render(now))
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


def test_live_view_follows_a_scenario() -> None:
    view = LiveView(Console(file=io.StringIO()))
    spec = {"faults": [{"name": "hold-port", "type": "port-conflict", "at": 5.0, "duration": 20.0}]}
    view(
        ScenarioStarted(
            ts=T0,
            scenario="pc",
            source="pc.yaml",
            tier="local",
            runbook="NETWORK001",
            description="",
            spec=spec,
        )
    )
    view(
        ExpectationStarted(
            ts=T0 + 1,
            scenario="pc",
            phase="steady_state",
            index=0,
            kind="load",
            description="load error ratio <= 1%",
            deadline=30.0,
        )
    )
    view(PhaseStarted(ts=T0 + 1, scenario="pc", phase="steady_state"))
    text = draw(view, T0 + 3)
    assert "pc · local · NETWORK001" in text
    assert "phase steady_state" in text and "elapsed 3s" in text
    assert "28s left" in text and "≤28s to the last deadline" in text
    assert "hold-port (port-conflict)  pending" in text

    view(
        LoadSampled(
            ts=T0 + 4,
            scenario="pc",
            t=T0 + 4,
            users=8,
            requests=40,
            failures=4,
            rps=40.0,
            error_ratio=0.1,
            p50_ms=20.0,
            p95_ms=90.0,
            ttft_p50_ms=5.0,
            ttft_p95_ms=12.0,
            output_tokens=100,
        )
    )
    view(
        ExpectationResolved(
            ts=T0 + 4,
            scenario="pc",
            phase="steady_state",
            index=0,
            kind="load",
            description="load error ratio <= 1%",
            outcome="passed",
            deadline=30.0,
            phase_started=T0 + 1,
            met_at=T0 + 3.5,
        )
    )
    view(PhaseStarted(ts=T0 + 5, scenario="pc", phase="experiment"))
    view(
        FaultApplied(
            ts=T0 + 10,
            scenario="pc",
            fault="hold-port",
            fault_type="port-conflict",
            description="",
            started=T0 + 10,
            offset=5.0,
            details=(),
        )
    )
    view(
        AlertChanged(
            ts=T0 + 12,
            scenario="pc",
            alert="InferenceTargetDown",
            state="firing",
            source="prometheus",
        )
    )
    text = draw(view, T0 + 15)
    assert "8 users  40.0 req/s  errors 10%  p95 90ms  TTFT p95 12ms" in text
    assert "held at +2.5s" in text
    assert "applied" in text and "reverts in 15s" in text
    assert "InferenceTargetDown (prometheus) firing" in text


def test_events_of_another_scenario_are_ignored() -> None:
    view = LiveView(Console(file=io.StringIO()))
    view(
        ScenarioStarted(
            ts=T0, scenario="a", source="", tier="local", runbook=None, description="", spec={}
        )
    )
    view(PhaseStarted(ts=T0 + 1, scenario="b", phase="recover"))
    assert "phase starting" in draw(view, T0 + 2)
