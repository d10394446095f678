"""Continuous batching over a paged KV cache, the way vLLM's V1 scheduler does it.

Pure logic, no clock and no I/O: the engine calls :meth:`Scheduler.schedule` to plan one
forward step, waits the step's simulated duration, then calls :meth:`Scheduler.finish_step`.

- At most ``max_num_seqs`` sequences run; the rest wait in FIFO order.
- The KV cache holds ``num_blocks`` blocks of ``block_size`` tokens. A sequence holds
  ``ceil(tokens_in_cache / block_size)`` blocks and grows by one token per decode step.
- When a running sequence cannot get a block, the youngest running sequence is preempted
  (vLLM's recompute preemption): its blocks are freed and it goes back to the front of the
  waiting queue; when readmitted it prefills its prompt plus what it had generated.
- Waiting sequences are admitted, in order, only in steps without preemption, while blocks,
  sequence slots and the step's token budget (``max_num_batched_tokens``) allow.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["BlockPool", "Scheduler", "Sequence", "SeqStatus", "StepPlan", "StepResult"]


class SeqStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False, slots=True)
class Sequence:
    """One request in the engine."""

    request_id: str
    prompt_tokens: int
    max_tokens: int
    # Where the simulated model emits EOS; == max_tokens when it ignores EOS.
    stop_at: int
    arrival_time: float
    # Streaming consumers are woken on every token, the others only when finished.
    stream: bool = False
    output_tokens: int = 0
    num_computed: int = 0
    num_blocks: int = 0
    status: SeqStatus = SeqStatus.WAITING
    finish_reason: str | None = None
    scheduled_time: float | None = None
    first_token_time: float | None = None
    last_token_time: float | None = None
    finish_time: float | None = None
    preemptions: int = 0
    waiter: asyncio.Future[None] | None = None

    @property
    def finished(self) -> bool:
        return self.status is SeqStatus.FINISHED

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class BlockPool:
    """Block accounting of the paged KV cache."""

    __slots__ = ("block_size", "free_blocks", "num_blocks")

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.free_blocks = num_blocks

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def ensure(self, seq: Sequence, tokens: int) -> bool:
        """Grow ``seq`` to hold ``tokens`` tokens; False (and no change) if blocks lack."""
        extra = self.blocks_for(tokens) - seq.num_blocks
        if extra <= 0:
            return True
        if extra > self.free_blocks:
            return False
        self.free_blocks -= extra
        seq.num_blocks += extra
        return True

    def release(self, seq: Sequence) -> None:
        self.free_blocks += seq.num_blocks
        seq.num_blocks = 0

    @property
    def used_blocks(self) -> int:
        return self.num_blocks - self.free_blocks

    @property
    def usage(self) -> float:
        """Fraction of blocks in use, vLLM's ``kv_cache_usage_perc`` (0..1)."""
        return self.used_blocks / self.num_blocks if self.num_blocks else 0.0


@dataclass(slots=True)
class StepPlan:
    prefill: list[Sequence] = field(default_factory=list)
    decode: list[Sequence] = field(default_factory=list)
    prefill_tokens: int = 0
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.prefill and not self.decode


@dataclass(slots=True)
class StepResult:
    """What one step produced, for metrics and for waking consumers."""

    ttft: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)
    new_prompt_tokens: int = 0
    generation_tokens: int = 0
    finished: list[Sequence] = field(default_factory=list)
    # Streaming sequences that received tokens (finished ones are in ``finished``).
    progressed: list[Sequence] = field(default_factory=list)


class Scheduler:
    def __init__(
        self,
        *,
        max_num_seqs: int,
        num_blocks: int,
        block_size: int,
        max_num_batched_tokens: int,
    ) -> None:
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.blocks = BlockPool(num_blocks, block_size)
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def abort(self, seq: Sequence, now: float) -> bool:
        """Drop ``seq`` wherever it is and free its blocks; False if it had finished."""
        if seq.status is SeqStatus.FINISHED:
            return False
        if seq.status is SeqStatus.WAITING:
            self.waiting.remove(seq)
        else:
            self.running.remove(seq)
        self.blocks.release(seq)
        self._finish(seq, "abort", now)
        return True

    def schedule(self) -> StepPlan:
        plan = StepPlan()
        running = self.running
        i = 0
        while i < len(running):
            seq = running[i]
            # A decode step writes the KV of the last sampled token.
            if self._grow_or_preempt(seq, seq.num_computed + 1, plan.preempted):
                plan.decode.append(seq)
            i += 1
        if plan.preempted:
            return plan
        budget = self.max_num_batched_tokens - len(plan.decode)
        while self.waiting and len(running) < self.max_num_seqs:
            seq = self.waiting[0]
            # A resumed sequence recomputes what it had generated, too.
            tokens = seq.prompt_tokens + seq.output_tokens
            if plan.prefill and plan.prefill_tokens + tokens > budget:
                break
            if not self.blocks.ensure(seq, tokens):
                break  # head-of-line: FIFO order is kept, as vLLM does
            self.waiting.popleft()
            seq.status = SeqStatus.RUNNING
            running.append(seq)
            plan.prefill.append(seq)
            plan.prefill_tokens += tokens
        return plan

    def _grow_or_preempt(self, seq: Sequence, tokens: int, preempted: list[Sequence]) -> bool:
        while not self.blocks.ensure(seq, tokens):
            victim = self.running.pop()
            self.blocks.release(victim)
            victim.status = SeqStatus.WAITING
            victim.num_computed = 0
            victim.preemptions += 1
            self.num_preemptions += 1
            self.waiting.appendleft(victim)
            preempted.append(victim)
            if victim is seq:
                return False
        return True

    def finish_step(self, plan: StepPlan, now: float) -> StepResult:
        result = StepResult()
        for seq in plan.prefill:
            if seq.status is SeqStatus.RUNNING:
                if seq.scheduled_time is None:
                    seq.scheduled_time = now
                seq.num_computed = seq.prompt_tokens + seq.output_tokens
                self._emit(seq, now, result)
        for seq in plan.decode:
            if seq.status is SeqStatus.RUNNING:
                seq.num_computed += 1
                self._emit(seq, now, result)
        if result.finished:
            self.running = [s for s in self.running if s.status is SeqStatus.RUNNING]
        return result

    def _emit(self, seq: Sequence, now: float, result: StepResult) -> None:
        seq.output_tokens += 1
        result.generation_tokens += 1
        if seq.first_token_time is None:
            seq.first_token_time = now
            result.ttft.append(now - seq.arrival_time)
            result.new_prompt_tokens += seq.prompt_tokens
        elif seq.last_token_time is not None:
            result.itl.append(now - seq.last_token_time)
        seq.last_token_time = now
        if seq.output_tokens >= seq.stop_at or seq.output_tokens >= seq.max_tokens:
            self.blocks.release(seq)
            self._finish(seq, "length" if seq.output_tokens >= seq.max_tokens else "stop", now)
            result.finished.append(seq)
        elif seq.stream:
            result.progressed.append(seq)

    @staticmethod
    def _finish(seq: Sequence, reason: str, now: float) -> None:
        seq.status = SeqStatus.FINISHED
        seq.finish_reason = reason
        seq.finish_time = now
