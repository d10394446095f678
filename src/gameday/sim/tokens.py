"""Tokens without a tokenizer: a prompt word is a token, and the output is deterministic.

The same prompt always yields the same text and the same natural length, so a test or a
game day can predict what the simulator answers.
"""

from __future__ import annotations

import zlib
from typing import Any

__all__ = [
    "count_chat_tokens",
    "count_prompt_tokens",
    "natural_length",
    "prompt_seed",
    "token_json",
    "token_text",
]

_WORDS = (
    "the",
    "system",
    "under",
    "test",
    "keeps",
    "serving",
    "while",
    "the",
    "game",
    "day",
    "injects",
    "a",
    "fault",
    "and",
    "every",
    "alert",
    "the",
    "runbook",
    "promises",
    "fires",
    "on",
    "time",
    "then",
    "the",
    "operators",
    "follow",
    "the",
    "documented",
    "steps",
    "until",
    "traffic",
    "recovers",
    "and",
    "the",
    "error",
    "budget",
    "holds",
    "steady",
    "so",
    "the",
    "team",
    "learns",
    "where",
    "latency",
    "queueing",
    "memory",
    "and",
    "recovery",
    "really",
    "behave",
)
# Each token after the first carries its leading space, as BPE tokens do.
_VOCAB = _WORDS
_SPACED = tuple(" " + w for w in _WORDS)
# The same as JSON string literals, for responses built as bytes: plain lowercase words
# need no escaping.
_VOCAB_JSON = tuple(f'"{w}"'.encode() for w in _VOCAB)
_SPACED_JSON = tuple(f'" {w}"'.encode() for w in _VOCAB)
# Token i is word (seed + 7 i) mod 50, so the words from any token on only depend on where
# that token falls in a cycle of 50: each cycle's text is made once, and any stretch of
# an answer is slices of it (a long answer costs no more to write than a short one).
_STEP = 7
_RUNS = tuple(
    b"".join(b" " + _VOCAB[(k + _STEP * j) % len(_VOCAB)].encode() for j in range(len(_VOCAB)))
    for k in range(len(_VOCAB))
)
_ENDS = tuple(
    tuple(
        sum(1 + len(_VOCAB[(k + _STEP * j) % len(_VOCAB)]) for j in range(i))
        for i in range(len(_VOCAB) + 1)
    )
    for k in range(len(_VOCAB))
)

# Natural answer lengths (where the simulated model would emit EOS) without max_tokens.
_MIN_NATURAL = 16
_MAX_NATURAL = 128


def count_prompt_tokens(prompt: str) -> int:
    """Whitespace-separated words; at least one, as a real prompt has at least BOS."""
    return max(1, len(prompt.split()))


def count_chat_tokens(messages: list[Any]) -> tuple[int, str]:
    """Tokens of a chat request and the text that seeds its answer.

    ``content`` may be a string or a list of parts (``{"type": "text", "text": ...}``).
    Raises ValueError with the reason when a message is malformed.
    """
    words = 0
    texts: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "role" not in message:
            raise ValueError(f"messages[{i}] must be an object with a 'role'")
        content = message.get("content")
        if content is None:
            continue
        if isinstance(content, str):
            parts = [content]
        elif isinstance(content, list):
            parts = [
                p["text"]
                for p in content
                if isinstance(p, dict)
                and p.get("type") == "text"
                and isinstance(p.get("text"), str)
            ]
        else:
            raise ValueError(f"messages[{i}].content must be a string or a list of parts")
        for part in parts:
            words += len(part.split())
            texts.append(part)
    return max(1, words), "\n".join(texts)


def prompt_seed(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def natural_length(seed: int) -> int:
    """Where the simulated model stops by itself: 16..128 tokens, fixed per prompt."""
    return _MIN_NATURAL + seed % (_MAX_NATURAL - _MIN_NATURAL + 1)


def token_text(seed: int, start: int, stop: int) -> str:
    """The text of output tokens ``start..stop-1`` of the answer seeded by ``seed``."""
    n = len(_VOCAB)
    pieces = [(_VOCAB if i == 0 else _SPACED)[(seed + i * _STEP) % n] for i in range(start, stop)]
    return "".join(pieces)


def token_json(seed: int, start: int, stop: int) -> bytes:
    """``token_text(seed, start, stop)`` as a JSON string literal, in UTF-8."""
    length = stop - start
    if length <= 0:
        return b'""'
    n = len(_VOCAB)
    k = (seed + start * _STEP) % n
    if length == 1:
        # One token per streamed chunk is the common case: no new object at all.
        return (_VOCAB_JSON if start == 0 else _SPACED_JSON)[k]
    run = _RUNS[k]
    cycles, rest = divmod(length, n)
    text = run[: _ENDS[k][rest]]
    if cycles:
        text = run * cycles + text
    # The first token of an answer has no leading space.
    return b'"' + (text[1:] if start == 0 else text) + b'"'
