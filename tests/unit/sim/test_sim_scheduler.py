"""Continuous batching, KV blocks and preemption, step by step."""

from __future__ import annotations

import pytest

from gameday.sim.scheduler import Scheduler, SeqStatus, Sequence


def make(
    n_blocks: int = 100, *, max_num_seqs: int = 8, block_size: int = 4, budget: int = 10_000
) -> Scheduler:
    return Scheduler(
        max_num_seqs=max_num_seqs,
        num_blocks=n_blocks,
        block_size=block_size,
        max_num_batched_tokens=budget,
    )


def seq(name: str, prompt: int = 4, tokens: int = 8, *, max_tokens: int | None = None) -> Sequence:
    return Sequence(
        request_id=name,
        prompt_tokens=prompt,
        max_tokens=max_tokens or tokens,
        stop_at=tokens,
        arrival_time=0.0,
    )


def run(s: Scheduler, steps: int, t0: float = 0.0, dt: float = 0.01) -> list[Sequence]:
    """Play ``steps`` steps; every sequence that finished."""
    done: list[Sequence] = []
    now = t0
    for _ in range(steps):
        plan = s.schedule(now)
        now += dt
        done += s.finish_step(plan, now).finished
    return done


def test_a_sequence_gets_one_token_per_step_and_stops_at_its_length() -> None:
    s = make()
    a = seq("a", prompt=4, tokens=3, max_tokens=10)
    s.add(a)
    assert a.output_tokens == 0
    run(s, 1)
    assert a.status is SeqStatus.RUNNING and a.output_tokens == 1
    run(s, 1)
    assert a.output_tokens == 2
    assert run(s, 1) == [a]
    assert a.finished and a.output_tokens == 3 and a.finish_reason == "stop"
    assert s.blocks.free_blocks == s.blocks.num_blocks


def test_reaching_max_tokens_is_finish_reason_length() -> None:
    s = make()
    a = seq("a", tokens=5)
    s.add(a)
    run(s, 5)
    assert a.finish_reason == "length" and a.output_tokens == 5


def test_blocks_cover_prompt_then_grow_every_block_size_tokens() -> None:
    s = make(block_size=4)
    a = seq("a", prompt=4, tokens=9)  # needs 4 + 8 = 12 tokens of KV at the last step
    s.add(a)
    run(s, 1)  # prefill: 4 tokens -> 1 block
    assert a.num_blocks == 1
    run(s, 1)  # decode writes the 5th token -> 2 blocks
    assert a.num_blocks == 2
    run(s, 3)  # 8 tokens
    assert a.num_blocks == 2
    run(s, 1)  # 9th token -> 3 blocks
    assert a.num_blocks == 3 and s.blocks.used_blocks == 3
    run(s, 3)
    assert a.finished and s.blocks.used_blocks == 0


def test_at_most_max_num_seqs_run_the_rest_wait_in_order() -> None:
    s = make(max_num_seqs=2)
    seqs = [seq(str(i), tokens=3) for i in range(4)]
    for q in seqs:
        s.add(q)
    run(s, 1)
    assert list(s.running) == seqs[:2]
    assert list(s.waiting) == seqs[2:]
    run(s, 2)  # the first two finish
    run(s, 1)
    assert list(s.running) == seqs[2:]


def test_waiting_head_blocks_when_its_blocks_lack_fifo_is_kept() -> None:
    s = make(n_blocks=3, block_size=4)
    big = seq("big", prompt=8, tokens=2)  # 2 blocks
    bigger = seq("bigger", prompt=8, tokens=2)  # 2 more: do not fit beside it
    small = seq("small", prompt=1, tokens=2)  # would fit, but must not overtake
    for q in (big, bigger, small):
        s.add(q)
    run(s, 1)
    assert list(s.running) == [big]
    assert list(s.waiting) == [bigger, small]


def test_prefill_budget_limits_the_prompts_admitted_in_one_step() -> None:
    s = make(budget=10)
    a, b, c = seq("a", prompt=6), seq("b", prompt=6), seq("c", prompt=20)
    for q in (a, b, c):
        s.add(q)
    plan = s.schedule(0.0)
    assert plan.prefill == [a] and plan.prefill_tokens == 6
    s.finish_step(plan, 0.01)
    # A prompt larger than the budget still runs, alone.
    s2 = make(budget=10)
    s2.add(c)
    assert s2.schedule(0.0).prefill == [c]


def test_full_cache_preempts_the_youngest_back_to_the_front_of_the_queue() -> None:
    # 4 blocks of 4 tokens; two sequences of 4 prompt tokens each need a 2nd block at once.
    s = make(n_blocks=3, block_size=4)
    old, young, late = seq("old", tokens=8), seq("young", tokens=8), seq("late", tokens=2)
    for q in (old, young):
        s.add(q)
    run(s, 1)
    s.add(late)
    assert s.blocks.used_blocks == 2
    plan = s.schedule(0.02)  # old gets the 3rd block, young cannot grow: preempted
    assert plan.preempted == [young]
    assert plan.prefill == []  # no admission in a step that preempted
    s.finish_step(plan, 0.03)
    assert list(s.running) == [old]
    assert list(s.waiting) == [young, late]
    assert young.status is SeqStatus.WAITING and young.output_tokens == 1
    assert young.num_blocks == 0 and s.num_preemptions == 1
    assert young.preemptions == 1


def test_a_preempted_sequence_resumes_recomputing_its_output() -> None:
    s = make(n_blocks=3, block_size=4)
    old, young = seq("old", tokens=6), seq("young", tokens=6)
    s.add(old)
    s.add(young)
    run(s, 2)
    assert young.status is SeqStatus.WAITING and young.output_tokens == 1
    finished = run(s, 10)
    assert finished == [old, young]
    assert young.output_tokens == 6 and young.finish_reason == "length"
    assert s.blocks.used_blocks == 0 and s.num_preemptions >= 1


def test_the_token_after_a_preemption_reports_the_stall_as_inter_token_latency() -> None:
    s = make(n_blocks=3, block_size=4)
    old, young = seq("old", tokens=6), seq("young", tokens=6)
    s.add(old)
    s.add(young)
    run(s, 2)  # young preempted at the 2nd step
    stalls: list[float] = []
    now = 1.0
    while young.status is not SeqStatus.RUNNING or young.output_tokens < 2:
        plan = s.schedule(now)
        now += 0.01
        stalls += s.finish_step(plan, now).itl
    assert stalls and max(stalls) > 0.5  # from its last token (t=0.01) to its resumption


def test_decoding_sequences_share_one_inter_token_latency_observation() -> None:
    s = make()
    for name in "abc":
        s.add(seq(name, tokens=5))
    first = s.finish_step(s.schedule(0.0), 0.01)
    assert len(first.ttft) == 3 and first.itl_bulk == (0.0, 0)
    assert first.new_prompt_tokens == 12 and first.generation_tokens == 3
    second = s.finish_step(s.schedule(0.01), 0.03)
    gap, tokens = second.itl_bulk
    assert gap == pytest.approx(0.02) and tokens == 3
    assert second.generation_tokens == 3


def test_abort_frees_blocks_wherever_the_sequence_is() -> None:
    s = make(max_num_seqs=1)
    running, waiting = seq("r", tokens=10), seq("w", tokens=10)
    s.add(running)
    s.add(waiting)
    run(s, 3)
    assert s.abort(running, 1.0) and running.finish_reason == "abort"
    assert running.output_tokens == 3 and s.blocks.used_blocks == 0
    assert s.abort(waiting, 1.0) and not s.waiting
    assert not s.abort(waiting, 1.0)  # already finished
    assert run(s, 10) == []  # its filed finish event is ignored


def test_abort_during_a_step_drops_it_from_that_step() -> None:
    s = make()
    a = seq("a", tokens=5)
    s.add(a)
    plan = s.schedule(0.0)
    s.abort(a, 0.005)
    result = s.finish_step(plan, 0.01)
    assert result.ttft == [] and result.generation_tokens == 0
    assert s.blocks.used_blocks == 0


def test_streaming_sequences_are_tracked_while_they_run() -> None:
    s = make()
    a = seq("a", tokens=2)
    a.stream = True
    s.add(a)
    run(s, 1)
    assert list(s.streaming) == [a]
    run(s, 1)
    assert not s.streaming and a.finished
