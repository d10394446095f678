"""``endpoints``: a Service in the target's namespace has this many ready addresses.

Read from the EndpointSlice watch: the endpointslice controller lists, in the slices
labelled with the Service's name, each pod its selector matches and whether it is
ready. After each observed change of one of those slices, the Service's ready
addresses (distinct, over all its slices) are counted; that count lasts until the next
change, so a count that began before the phase and still lasts holds from its start.
A Service whose selector matches nothing has an empty slice: 0 ready.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from gameday.assertions.base import Expectation, Verdict, clock, expectations
from gameday.core.events import EndpointSliceObserved
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams

__all__ = ["EndpointsExpectation", "EndpointsParams", "ServiceEndpoints"]


class EndpointsParams(ExpectationParams):
    service: str
    """The Service's name, in the target's namespace."""
    ready: int | None = Field(default=None, ge=0)
    """Exactly this many ready addresses."""
    min_ready: int | None = Field(default=None, ge=0)
    """At least this many."""
    max_ready: int | None = Field(default=None, ge=0)
    """At most this many."""

    @model_validator(mode="after")
    def _one_count(self) -> EndpointsParams:
        bounded = self.min_ready is not None or self.max_ready is not None
        if self.ready is not None and bounded:
            raise ValueError("give ready, or min_ready and/or max_ready, not both")
        if self.ready is None and not bounded:
            raise ValueError("give ready, min_ready or max_ready")
        if (
            self.min_ready is not None
            and self.max_ready is not None
            and self.min_ready > self.max_ready
        ):
            raise ValueError("min_ready must not be above max_ready")
        return self

    def describe(self) -> str:
        if self.ready is not None:
            count = f"{self.ready}"
        elif self.max_ready is None:
            count = f">= {self.min_ready}"
        elif self.min_ready is None:
            count = f"<= {self.max_ready}"
        else:
            count = f"{self.min_ready} to {self.max_ready}"
        return f"service {self.service} has {count} ready addresses"

    def holds(self, ready: int) -> bool:
        if self.ready is not None:
            return ready == self.ready
        return (self.min_ready is None or ready >= self.min_ready) and (
            self.max_ready is None or ready <= self.max_ready
        )


class ServiceEndpoints:
    """One Service's addresses at one moment, over all its live slices."""

    def __init__(self, ts: float, slices: dict[str, EndpointSliceObserved]) -> None:
        self.ts = ts
        self.ready = sorted({a for s in slices.values() for a in s.ready})
        self.not_ready = sorted({a for s in slices.values() for a in s.not_ready} - {*self.ready})
        self.slices = len(slices)

    def __str__(self) -> str:
        shown = ", ".join(self.ready[:8]) + (" ..." if len(self.ready) > 8 else "")
        ready = f"{len(self.ready)} ready" + (f" ({shown})" if shown else "")
        return f"{ready}, {len(self.not_ready)} not ready, in {self.slices} EndpointSlice(s)"


@expectations.register("endpoints")
class EndpointsExpectation(Expectation[EndpointsParams]):
    Params = EndpointsParams
    summary = "A Service has N (or at least, at most N) ready addresses in its EndpointSlices."

    def reported_by(self) -> tuple[str, ...]:
        # the endpointslice controller writes the slices, from the readiness kubelets report
        return ("endpoint-slice-controller", "kubelet")

    def _moments(self, observed: Observations) -> list[ServiceEndpoints]:
        live: dict[str, EndpointSliceObserved] = {}
        moments = []
        for endpoint_slice in observed.endpoint_slices:
            if endpoint_slice.service != self.params.service:
                continue
            if endpoint_slice.deleted:
                live.pop(endpoint_slice.slice, None)
            else:
                live[endpoint_slice.slice] = endpoint_slice
            moments.append(ServiceEndpoints(endpoint_slice.ts, dict(live)))
        return moments

    def check(self, observed: Observations, since: float) -> Verdict:
        moments = self._moments(observed)
        for position, moment in enumerate(moments):
            nxt = moments[position + 1].ts if position + 1 < len(moments) else None
            if nxt is not None and nxt <= since:
                continue  # a count that ended before the phase began
            if self.params.holds(len(moment.ready)):
                at = max(moment.ts, since)
                return Verdict.held(at, f"{clock(at, since)} {self.params.service}: {moment}")
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        moments = self._moments(observed)
        if not moments:
            return [
                f"no EndpointSlice of service {self.params.service} was observed: is there "
                "such a Service in the target's namespace, with a selector?"
            ]
        counts = [len(m.ready) for m in moments if m.ts >= since]
        seen = f"; the last ready counts since the phase began: {counts[-20:]}" if counts else ""
        last = moments[-1]
        return [
            f"never {self.params.describe()}{seen}",
            f"as last seen ({clock(last.ts, since)}): {last}",
        ]
