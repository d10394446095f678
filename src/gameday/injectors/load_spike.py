"""load-spike (KVCacheExhaustion): a burst of users with long prompts saturates the server.

The vLLM troubleshooting's "KV cache full — too many concurrent sequences or long
contexts" and "Throughput degradation": the scenario's own load is raised to ``users``
users (ramped at ``spawn_rate`` per second, by default all within a second) sending
prompts of about ``prompt_tokens`` tokens with ``max_tokens`` for the fault's duration.
Nothing is faked: the long prompts really take KV-cache blocks in the server's paged
cache, so ``vllm:kv_cache_usage_perc`` approaches 1, running sequences are preempted
when they cannot grow (``vllm:num_preemptions``), requests wait for blocks and sequence
slots (``vllm:num_requests_waiting`` rises) and the time to first token climbs with the
queue — what the KV-cache and queue alerts and the load's TTFT figures observe.

Reverting sets the users and the request shape back to what the scenario's ``load:``
started with. There is no journal record: the load is a Locust process the run itself
started (journaled by the run, so ``gameday cleanup`` stops it), and it stops on its own
when the harness dies and its stdin reaches EOF, so a spike cannot outlive the run.

It needs the scenario's ``load:`` section (the running load is what it changes). It
acts on the load, not on the target, so it would work on any target kind; it is offered
on the local tier, where it has been exercised.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from gameday.core.errors import ComponentUnreachable, InjectionError
from gameday.injectors.base import Injector, LoadControl, faults
from gameday.load.protocol import LoadConfig
from gameday.scenario.model import FaultSpec
from gameday.targets.base import Target

__all__ = ["LoadSpike", "LoadSpikeSpec"]


class LoadSpikeSpec(FaultSpec):
    """Raise the scenario's load to many users with long prompts for the fault's duration."""

    users: int = Field(default=64, ge=1, le=5000)
    """Users during the spike (each keeps one request in flight, then thinks)."""
    spawn_rate: float | None = Field(default=None, gt=0)
    """Users started per second. Default: ``users`` (the spike arrives within a second)."""
    prompt_tokens: int | None = Field(default=1024, ge=1, le=1_000_000)
    """Prompt length during the spike, in tokens. null keeps the load's own."""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    """``max_tokens`` of each request during the spike. Default: the load's own."""


@faults.register("load-spike")
class LoadSpike(Injector[LoadSpikeSpec, Target]):
    Params = LoadSpikeSpec
    target_kinds = frozenset({"local"})
    needs_load: ClassVar[bool] = True
    """It changes the scenario's running load: a scenario without ``load:`` is refused."""
    runbook = "KVCacheExhaustion"
    summary = (
        "Raise the load to many users with long prompts: the KV cache fills, requests "
        "are preempted and queue, TTFT climbs."
    )

    original: LoadConfig | None = None

    @classmethod
    def describe(cls, spec: LoadSpikeSpec) -> str:
        rate = f"{spec.spawn_rate:g}/s" if spec.spawn_rate else "at once"
        prompt = (
            f"~{spec.prompt_tokens}-token prompts"
            if spec.prompt_tokens
            else "the load's own prompts"
        )
        answer = f", max_tokens {spec.max_tokens}" if spec.max_tokens else ""
        return (
            f"raise the load to {spec.users} users ({rate}) sending {prompt}{answer}; "
            "set it back when the fault ends"
        )

    def _load(self) -> LoadControl:
        if self.ctx.load is None:
            raise InjectionError(
                "load-spike changes the scenario's load, and this scenario has no load: "
                "section (add e.g. load: {users: 8} to the scenario)"
            )
        return self.ctx.load

    def apply(self) -> dict[str, str]:
        load = self._load()
        self.original = original = load.config
        prompt = self.spec.prompt_tokens or original.prompt_tokens
        answer = self.spec.max_tokens or original.max_tokens
        # the shape first, so that every user the spike adds sends the long prompts
        load.set_shape(prompt, answer)
        load.set_users(self.spec.users, self.spec.spawn_rate or float(self.spec.users))
        return {
            "users": f"{original.users} -> {self.spec.users}",
            "prompt tokens": f"{original.prompt_tokens} -> {prompt}",
            "max tokens": f"{original.max_tokens} -> {answer}",
        }

    def revert(self) -> dict[str, str]:
        original = self.original
        if original is None:
            return {}
        load = self._load()
        try:
            # back down within a second: the spike's users are stopped, not drained slowly
            load.set_users(original.users, float(max(original.users, self.spec.users)))
            load.set_shape(original.prompt_tokens, original.max_tokens)
        except ComponentUnreachable as error:
            # a load that is gone sends no spike either; its end is reported by the run
            return {"load": f"not set back, the load runner is gone: {error}"}
        return {
            "users": f"back to {original.users}",
            "shape": f"{original.prompt_tokens} prompt tokens, max_tokens {original.max_tokens}",
        }
