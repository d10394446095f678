"""``http``: a URL answers with the expected status (and body text) within the deadline."""

from __future__ import annotations

import time
from typing import Literal

import httpx
from pydantic import Field

from gameday.assertions.base import Expectation, ExpectationContext, Verdict, clock, expectations
from gameday.core.observations import Observations
from gameday.scenario.model import ExpectationParams
from gameday.scenario.units import Duration

__all__ = ["HttpExpectation", "HttpParams"]

PROBE_INTERVAL = 0.5


class HttpParams(ExpectationParams):
    url: str = "{server}/health"
    """Placeholders: {server}, {prometheus}, {alertmanager}."""
    method: Literal["GET", "HEAD", "POST"] = "GET"
    status: int | list[int] = 200
    """Expected status code, or any of a list. 0 means 'no answer' (connection failed)."""
    body_contains: str | None = None
    timeout: Duration = Field(default=2.0, gt=0)

    def statuses(self) -> list[int]:
        return self.status if isinstance(self.status, list) else [self.status]

    def describe(self) -> str:
        wanted = " or ".join(str(s) for s in self.statuses())
        return f"http {self.method} {self.url} -> {wanted}"


@expectations.register("http")
class HttpExpectation(Expectation[HttpParams]):
    Params = HttpParams
    summary = "A URL answers with a status (0: no answer) and optional body text."

    def __init__(self, params: HttpParams, ctx: ExpectationContext) -> None:
        super().__init__(params, ctx)
        self._client = httpx.Client(timeout=params.timeout)
        self._last_probe = 0.0
        self._seen: list[tuple[float, str]] = []

    def _probe(self) -> tuple[int, str]:
        url = self.ctx.expand(self.params.url)
        try:
            response = self._client.request(self.params.method, url)
        except httpx.HTTPError as error:
            return 0, type(error).__name__
        return response.status_code, response.text[:2000]

    def check(self, observed: Observations, since: float) -> Verdict:
        url = self.ctx.expand(self.params.url)
        if time.monotonic() - self._last_probe < PROBE_INTERVAL:
            return Verdict.pending()
        self._last_probe = time.monotonic()
        at = time.time()
        status, body = self._probe()
        outcome = f"{status}" if status else f"no answer ({body})"
        if not self._seen or self._seen[-1][1] != outcome:
            self._seen.append((at, outcome))
        body_ok = self.params.body_contains is None or self.params.body_contains in body
        if status in self.params.statuses() and body_ok:
            return Verdict.held(
                at,
                f"{clock(at, since)} {self.params.method} {url} -> {outcome}",
            )
        return Verdict.pending()

    def explain(self, observed: Observations, since: float) -> list[str]:
        url = self.ctx.expand(self.params.url)
        if not self._seen:
            return [f"{url} was never probed"]
        return [
            f"{self.params.method} {url} answered:",
            *(f"{clock(t, since)} {o}" for t, o in self._seen[-10:]),
        ]
