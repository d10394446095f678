"""The engine loop: one asyncio task that plays the scheduler's steps in simulated GPU time.

A step lasts ``decode_ms_per_token`` (one forward pass) plus ``prefill_ms_per_token`` for
every prompt token prefilled in it, so long prompts slow every running sequence down, and a
full KV cache or a full batch makes requests queue, as on a real GPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from gameday.sim.logs import logger
from gameday.sim.metrics import Metrics
from gameday.sim.scheduler import Scheduler, Sequence, StepPlan

__all__ = ["Engine"]

# vLLM logs engine throughput every 10 s while there is traffic (VLLM_LOG_STATS_INTERVAL).
_STATS_INTERVAL = 10.0
# How many steps late the engine may run before it stops catching up: then the server's
# CPU, not the simulated GPU, is what limits it.
_MAX_LAG_STEPS = 8
# vLLM V0 warned on the first preemption and on every 50th after it; V1 (the default
# engine from 0.8, the only one since 0.11) preempts without a line.
_PREEMPTION_WARN_EVERY = 50
V1_DEFAULT_RELEASE = (0, 8, 0)


class Engine:
    def __init__(
        self,
        scheduler: Scheduler,
        metrics: Metrics,
        *,
        decode_ms_per_token: float,
        prefill_ms_per_token: float,
        warn_on_preemption: bool = False,
    ) -> None:
        self.scheduler = scheduler
        self._warn_on_preemption = warn_on_preemption
        self.metrics = metrics
        self._decode_s = decode_ms_per_token / 1000.0
        self._prefill_s = prefill_ms_per_token / 1000.0
        self._max_lag_s = self._decode_s * _MAX_LAG_STEPS
        self._wakeup: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.error: BaseException | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._log_stats())]
        self._tasks[0].add_done_callback(self._on_loop_exit)

    async def stop(self) -> None:
        self.abort_all()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def alive(self) -> bool:
        return self.error is None

    def add(self, seq: Sequence) -> None:
        self.scheduler.add(seq)
        self._wake()

    def abort(self, seq: Sequence) -> None:
        if self.scheduler.abort(seq, time.monotonic()):
            self.metrics.record_finished(seq)
            _notify(seq)
            self._wake()

    def abort_all(self) -> None:
        for seq in [*self.scheduler.running, *self.scheduler.waiting]:
            self.abort(seq)

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _idle(self) -> None:
        self._wakeup = asyncio.get_running_loop().create_future()
        try:
            await self._wakeup
        finally:
            self._wakeup = None

    def _schedule(self, now: float) -> StepPlan | None:
        """The next step, starting ``now``; None when nothing can run."""
        scheduler = self.scheduler
        if not scheduler.has_work:
            return None
        plan = scheduler.schedule(now)
        return plan if scheduler.running else None

    async def _run(self) -> None:
        scheduler, metrics = self.scheduler, self.metrics
        next_warning = 1
        next_flush = 0.0
        plan: StepPlan | None = None
        while True:
            if plan is None:
                plan = self._schedule(time.monotonic())
                if plan is None:
                    await self._idle()
                    continue
            # The step ends at a deadline, so the time the server spends meanwhile (HTTP,
            # the last step's answers) is part of the step, as the GPU works while the CPU
            # does. Sleeping 0 still yields, so HTTP handling goes on between late steps.
            deadline = plan.started + self._decode_s + self._prefill_s * plan.prefill_tokens
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
            now = time.monotonic()
            result = scheduler.finish_step(plan, now)
            metrics.record_step(result)
            # The next step starts when this one ended, as on a GPU (vLLM's engine core
            # steps on while its API server is busy): neither the loop waking up late nor
            # writing this step's tokens (below, overlapping the next step) lengthens the
            # simulated steps; late steps follow each other at once until back on time.
            # Only a server more than a few steps behind (saturated) starts afresh from now.
            on_time = now - deadline < self._max_lag_s
            plan = self._schedule(deadline if on_time else now)
            for seq in result.finished:
                _notify(seq)
            if scheduler.streaming and now >= next_flush:
                # A copy: a listener may abort its sequence (client gone), changing the dict.
                # _notify inlined: this runs for every stream at every step.
                for seq in list(scheduler.streaming):
                    listener = seq.listener
                    if listener is not None:
                        try:
                            listener(seq)
                        except Exception:
                            logger.exception("Error in the listener of request %s", seq.request_id)
                # Writing streams takes at most half the time: when a pass is longer than
                # what separates steps, the next steps skip it and their tokens go out
                # merged in one chunk, as vLLM merges deltas for a consumer that lags.
                end = time.monotonic()
                next_flush = end + (end - now)
            if self._warn_on_preemption and scheduler.num_preemptions >= next_warning:
                next_warning = (
                    scheduler.num_preemptions // _PREEMPTION_WARN_EVERY + 1
                ) * _PREEMPTION_WARN_EVERY + 1
                preempted = plan.preempted if plan is not None else []
                logger.warning(
                    "Sequence group %s is preempted by PreemptionMode.RECOMPUTE mode because "
                    "there is not enough KV cache space. This can affect the end-to-end "
                    "performance. Increase gpu_memory_utilization or tensor_parallel_size to "
                    "provide more KV cache memory. total_num_cumulative_preemption=%d",
                    preempted[-1].request_id if preempted else "-",
                    scheduler.num_preemptions,
                )

    def _on_loop_exit(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.error = exc
            logger.error("EngineCore encountered a fatal error.", exc_info=exc)
            self.metrics.ready = False
            # Nothing will finish the requests in flight any more: answer them now.
            self.abort_all()

    async def _log_stats(self) -> None:
        metrics, scheduler = self.metrics, self.scheduler
        last_prompt, last_gen = metrics.prompt_tokens, metrics.generation_tokens
        last_time = time.monotonic()
        was_active = False
        while True:
            await asyncio.sleep(_STATS_INTERVAL)
            now = time.monotonic()
            elapsed = now - last_time
            prompt_tput = (metrics.prompt_tokens - last_prompt) / elapsed
            gen_tput = (metrics.generation_tokens - last_gen) / elapsed
            metrics.prompt_throughput, metrics.gen_throughput = prompt_tput, gen_tput
            last_prompt, last_gen, last_time = metrics.prompt_tokens, metrics.generation_tokens, now
            active = bool(prompt_tput or gen_tput or scheduler.has_work)
            # Like vLLM, stay quiet on an idle server (but report the step back to idle).
            if active or was_active:
                logger.info(
                    "Engine 000: Avg prompt throughput: %.1f tokens/s, Avg generation "
                    "throughput: %.1f tokens/s, Running: %d reqs, Waiting: %d reqs, GPU KV "
                    "cache usage: %.1f%%, Prefix cache hit rate: 0.0%%",
                    prompt_tput,
                    gen_tput,
                    len(scheduler.running),
                    len(scheduler.waiting),
                    scheduler.blocks.usage * 100,
                )
            was_active = active


def _notify(seq: Sequence) -> None:
    listener = seq.listener
    if listener is None:
        return
    try:
        listener(seq)
    except Exception:
        # A listener's bug must not stop the engine for everyone.
        logger.exception("Error in the listener of request %s", seq.request_id)
