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

Every running sequence gains exactly one token per step, so a sequence's token count is
a function of the step counter, and the only per-sequence events are known in advance:
the step it needs its next block and the step it finishes. The scheduler files those
events by step, so a step costs time for what happens in it, not for every running
sequence (a long answer costs no more to simulate than a short one).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["BlockPool", "Scheduler", "SeqStatus", "Sequence", "StepClock", "StepPlan", "StepResult"]


class SeqStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class StepClock:
    """The index of the last completed step, shared by a scheduler and its sequences."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


@dataclass(eq=False, slots=True)
class Sequence:
    """One request in the engine."""

    request_id: str
    prompt_tokens: int
    max_tokens: int
    # Where the simulated model emits EOS (== max_tokens when it ignores EOS).
    stop_at: int
    arrival_time: float
    # Streaming sequences are reported after every step, the others when they finish.
    stream: bool = False
    # Called by the engine with this sequence when it progresses (streaming) or finishes.
    listener: Callable[[Sequence], None] | None = None
    status: SeqStatus = SeqStatus.WAITING
    finish_reason: str | None = None
    # Tokens generated before the current admission (all of them, once not running).
    carried: int = 0
    # The step that prefilled it (its first token of this admission comes out of it).
    start_step: int = 0
    clock: StepClock | None = None
    num_blocks: int = 0
    # Admission order among running sequences: the youngest is preempted first.
    order: int = 0
    # Bumped on preemption and abort, so events filed for an older admission are ignored.
    epoch: int = 0
    finish_step: int = 0
    scheduled_time: float | None = None
    first_token_time: float | None = None
    last_token_time: float | None = None
    finish_time: float | None = None
    preemptions: int = 0

    @property
    def output_tokens(self) -> int:
        if self.status is SeqStatus.RUNNING and self.clock is not None:
            done = self.clock.value - self.start_step + 1
            if done > 0:
                return self.carried + done
        return self.carried

    @property
    def finished(self) -> bool:
        return self.status is SeqStatus.FINISHED


class BlockPool:
    """Block accounting of the paged KV cache."""

    __slots__ = ("block_size", "free_blocks", "num_blocks")

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.free_blocks = num_blocks

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    @property
    def used_blocks(self) -> int:
        return self.num_blocks - self.free_blocks

    @property
    def usage(self) -> float:
        """Fraction of blocks in use, vLLM's ``kv_cache_usage_perc`` (0..1)."""
        return self.used_blocks / self.num_blocks if self.num_blocks else 0.0


@dataclass(slots=True)
class StepPlan:
    step: int
    started: float
    prefill: list[Sequence] = field(default_factory=list)
    prefill_tokens: int = 0
    preempted: list[Sequence] = field(default_factory=list)


@dataclass(slots=True)
class StepResult:
    """What one step produced, for metrics and listeners."""

    ttft: list[float] = field(default_factory=list)
    # Inter-token latencies observed one by one (sequences resumed after preemption)...
    itl: list[float] = field(default_factory=list)
    # ...and the one every other decoding sequence shares: (seconds, how many).
    itl_bulk: tuple[float, int] = (0.0, 0)
    new_prompt_tokens: int = 0
    generation_tokens: int = 0
    finished: list[Sequence] = field(default_factory=list)


_Event = tuple[int, Sequence]  # (epoch when filed, sequence)


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
        self.clock = StepClock()
        self.waiting: deque[Sequence] = deque()
        # Insertion-ordered: admission order, the youngest last.
        self.running: dict[Sequence, None] = {}
        self.streaming: dict[Sequence, None] = {}
        self.num_preemptions = 0
        self.last_step_time: float | None = None
        self._finish_at: dict[int, list[_Event]] = {}
        self._grow_at: dict[int, list[_Event]] = {}
        self._order = itertools.count()

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def add(self, seq: Sequence) -> None:
        seq.clock = self.clock
        self.waiting.append(seq)

    def abort(self, seq: Sequence, now: float) -> bool:
        """Drop ``seq`` wherever it is and free its blocks; False if it had finished."""
        if seq.status is SeqStatus.FINISHED:
            return False
        if seq.status is SeqStatus.WAITING:
            self.waiting.remove(seq)
        else:
            seq.carried = seq.output_tokens
            self._release(seq)
        seq.epoch += 1
        seq.status = SeqStatus.FINISHED
        seq.finish_reason = "abort"
        seq.finish_time = now
        return True

    def _release(self, seq: Sequence) -> None:
        del self.running[seq]
        if seq.stream:
            self.streaming.pop(seq, None)
        self.blocks.free_blocks += seq.num_blocks
        seq.num_blocks = 0

    def schedule(self, now: float) -> StepPlan:
        step = self.clock.value + 1
        plan = StepPlan(step=step, started=now)
        growing = self._grow_at.pop(step, None)
        if growing:
            self._grow(growing, plan)
        if not plan.preempted:
            self._admit(plan)
        return plan

    def _grow(self, events: list[_Event], plan: StepPlan) -> None:
        """Give one more block to each sequence that crosses a block boundary this step."""
        pool = self.blocks
        if len(events) > 1:
            events.sort(key=lambda e: e[1].order)
        for epoch, seq in events:
            if seq.epoch != epoch:
                continue  # preempted or aborted since
            while pool.free_blocks < 1:
                victim = next(reversed(self.running))
                self._preempt(victim, plan)
                if victim is seq:
                    break
            else:
                pool.free_blocks -= 1
                seq.num_blocks += 1
                following = plan.step + pool.block_size
                if following <= seq.finish_step:
                    self._grow_at.setdefault(following, []).append((seq.epoch, seq))

    def _preempt(self, victim: Sequence, plan: StepPlan) -> None:
        victim.carried = victim.output_tokens
        self._release(victim)
        victim.status = SeqStatus.WAITING
        victim.epoch += 1
        victim.preemptions += 1
        victim.last_token_time = self.last_step_time
        self.num_preemptions += 1
        self.waiting.appendleft(victim)
        plan.preempted.append(victim)

    def _admit(self, plan: StepPlan) -> None:
        pool, running, waiting = self.blocks, self.running, self.waiting
        step = plan.step
        # Decoding sequences take one token each of the step's budget.
        budget = self.max_num_batched_tokens - len(running)
        while waiting and len(running) < self.max_num_seqs:
            seq = waiting[0]
            # A resumed sequence recomputes what it had generated, too.
            tokens = seq.prompt_tokens + seq.carried
            if plan.prefill and plan.prefill_tokens + tokens > budget:
                break
            need = pool.blocks_for(tokens)
            if need > pool.free_blocks:
                break  # head-of-line: FIFO order is kept, as vLLM does
            waiting.popleft()
            pool.free_blocks -= need
            seq.num_blocks = need
            seq.status = SeqStatus.RUNNING
            seq.start_step = step
            seq.order = next(self._order)
            running[seq] = None
            if seq.stream:
                self.streaming[seq] = None
            # One token per step from this one on; the block boundary comes every
            # block_size tokens after the prefilled ones.
            seq.finish_step = step + seq.stop_at - seq.carried - 1
            self._finish_at.setdefault(seq.finish_step, []).append((seq.epoch, seq))
            grow = step + need * pool.block_size - tokens + 1
            if grow <= seq.finish_step:
                self._grow_at.setdefault(grow, []).append((seq.epoch, seq))
            plan.prefill.append(seq)
            plan.prefill_tokens += tokens

    def finish_step(self, plan: StepPlan, now: float) -> StepResult:
        step = plan.step
        self.clock.value = step
        result = StepResult()
        previous, self.last_step_time = self.last_step_time, now
        prefilled = 0
        for seq in plan.prefill:
            if seq.status is not SeqStatus.RUNNING:
                continue  # aborted during the step
            prefilled += 1
            if seq.scheduled_time is None:
                seq.scheduled_time = plan.started
            if seq.first_token_time is None:
                seq.first_token_time = now
                result.ttft.append(now - seq.arrival_time)
                result.new_prompt_tokens += seq.prompt_tokens
            elif seq.last_token_time is not None:
                result.itl.append(now - seq.last_token_time)
        decoded = len(self.running) - prefilled
        if decoded > 0 and previous is not None:
            result.itl_bulk = (now - previous, decoded)
        result.generation_tokens = decoded + prefilled
        due = self._finish_at.pop(step, None)
        if due:
            for epoch, seq in due:
                if seq.epoch != epoch:
                    continue
                self._release(seq)
                seq.carried = seq.stop_at
                seq.status = SeqStatus.FINISHED
                seq.finish_reason = "length" if seq.stop_at >= seq.max_tokens else "stop"
                seq.finish_time = seq.last_token_time = now
                result.finished.append(seq)
        return result
