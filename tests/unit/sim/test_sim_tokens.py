"""Word-count tokens and the deterministic answer text."""

from __future__ import annotations

import json

import pytest

from gameday.sim.tokens import (
    count_chat_tokens,
    count_prompt_tokens,
    natural_length,
    prompt_seed,
    token_json,
    token_text,
)


def test_prompt_tokens_are_whitespace_separated_words_at_least_one() -> None:
    assert count_prompt_tokens("the quick  brown\nfox\tjumps") == 5
    assert count_prompt_tokens("") == 1


def test_chat_tokens_count_every_message_and_text_parts() -> None:
    tokens, text = count_chat_tokens(
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "one two three"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "assistant", "content": None},
        ]
    )  # fmt: skip
    assert tokens == 5
    assert text == "be brief\none two three"


@pytest.mark.parametrize(
    "messages",
    [[{"content": "no role"}], ["not an object"], [{"role": "user", "content": 3}]],
)
def test_malformed_messages_are_refused_with_the_reason(messages: list[object]) -> None:
    with pytest.raises(ValueError, match=r"messages\[0\]"):
        count_chat_tokens(messages)


def test_answers_are_deterministic_per_prompt() -> None:
    seed = prompt_seed("hello there")
    assert seed == prompt_seed("hello there") != prompt_seed("hello there!")
    assert token_text(seed, 0, 5) == token_text(seed, 0, 2) + token_text(seed, 2, 5)
    words = token_text(seed, 0, 5).split(" ")
    assert len(words) == 5 and all(words)


def test_natural_length_stays_within_16_to_128() -> None:
    lengths = {natural_length(prompt_seed(str(i))) for i in range(2000)}
    assert min(lengths) >= 16 and max(lengths) <= 128
    assert len(lengths) > 50


def test_token_json_is_the_text_as_a_json_string() -> None:
    for seed in (0, 7, 49, 50, 123456789):
        for start, stop in ((0, 0), (0, 1), (1, 2), (0, 32), (5, 57), (3, 260), (100, 101)):
            expected = json.dumps(token_text(seed, start, stop)).encode()
            assert token_json(seed, start, stop) == expected, (seed, start, stop)
