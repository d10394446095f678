"""vLLM's HTTP surface, recorded (tests/data/vllm/) or live, and how another server's is
compared with it: the same requests, then the metric families and the JSON shapes.

:func:`exercise` sends the requests tests/data/vllm/record.py sends, in its order, so a
server's answers and /metrics compare with a recording's; the ``*_differences`` functions
return what differs, one line each (an empty list: nothing).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "FIXTURES",
    "SIM_ONLY_PREFIX",
    "Family",
    "Surface",
    "chunk_kind",
    "exercise",
    "families",
    "json_differences",
    "message_pattern",
    "metric_differences",
    "shape",
    "sse_chunks",
]

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "vllm" / "0.32.0"

SIM_ONLY_PREFIX = "gameday_sim_"
"""The simulator's own families (gameday_sim_info, ..._ready, ...): no vLLM has them."""

FIXED_LABELS = frozenset(
    {
        "engine",
        "model_name",
        "finished_reason",
        "source",
        "reason",
        "sleep_state",
        "generation",
        "handler",
        "method",
        "status",
    }
)
"""Labels whose values are compared too (the rest, e.g. python_info's version, by name)."""

SIM_OWN_CACHE_CONFIG = frozenset(
    {
        "block_size",
        "effective_attention_block_size",
        "enable_prefix_caching",
        "kv_cache_max_concurrency",
        "kv_cache_memory_bytes",
        "kv_cache_size_tokens",
        "num_gpu_blocks",
    }
)
"""vllm:cache_config_info labels whose values are the server's own (its cache, its block
size: CPU vLLM's is 128, the simulator's GPU-like 16; the simulator has no prefix cache);
every other label's value is vLLM's default and compared."""


@dataclass
class Surface:
    """What a server answered to :func:`exercise` (or what a recording holds)."""

    models: Any
    version: Any
    chat: Any
    completion: Any
    stream: bytes
    errors: dict[str, Any]
    metrics: str

    @classmethod
    def recorded(cls, directory: Path = FIXTURES) -> Surface:
        def load(name: str) -> Any:
            return json.loads((directory / name).read_text())

        return cls(
            models=load("models.json"),
            version=load("version.json"),
            chat=load("chat.json"),
            completion=load("completion.json"),
            stream=(directory / "chat-stream.sse").read_bytes(),
            errors=load("errors.json"),
            metrics=(directory / "metrics.txt").read_text(),
        )

    @property
    def model(self) -> str:
        return str(self.models["data"][0]["id"])


def exercise(base: str) -> Surface:
    """Send record.py's requests to the server at ``base``; what it answered."""
    with httpx.Client(base_url=base, timeout=60) as client:
        models = client.get("/v1/models").json()
        name = models["data"][0]["id"]
        version = client.get("/version").json()
        chat = {
            "model": name,
            "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": 8,
        }
        for _ in range(3):
            response = client.post("/v1/chat/completions", json=chat)
        chat_answer = response.json()
        completion = {"model": name, "prompt": "once upon a time", "max_tokens": 8}
        completion_answer = client.post("/v1/completions", json=completion).json()
        stream = {**chat, "stream": True, "stream_options": {"include_usage": True}}
        with client.stream("POST", "/v1/chat/completions", json=stream) as response:
            raw = b"".join(response.iter_bytes())
        errors = {}
        for case, body in {
            "unknown-model": {**chat, "model": "no-such-model"},
            "prompt-too-long": {
                **chat,
                "messages": [{"role": "user", "content": "word " * 2000}],
            },
            "max-tokens-too-large": {**chat, "max_tokens": 100000},
        }.items():
            response = client.post("/v1/chat/completions", json=body)
            errors[case] = {"status": response.status_code, "body": response.json()}
        metrics = client.get("/metrics").text
    return Surface(models, version, chat_answer, completion_answer, raw, errors, metrics)


# -- metrics -------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A metric family as the text format shows it (``x_created`` is a family of its own)."""

    name: str
    type: str
    labels: frozenset[str]
    values: dict[str, frozenset[str]]
    buckets: frozenset[tuple[str, ...]]
    """The ``le`` boundaries of each series (one tuple per distinct list)."""


def families(text: str) -> dict[str, Family]:
    out: dict[str, Family] = {}
    for fam in text_string_to_metric_families(text):
        labels: set[str] = set()
        values: dict[str, set[str]] = {}
        series: dict[tuple[tuple[str, str], ...], list[str]] = {}
        for sample in fam.samples:
            plain = {k: v for k, v in sample.labels.items() if k not in ("le", "quantile")}
            labels.update(plain)
            for k, v in plain.items():
                values.setdefault(k, set()).add(v)
            if sample.name.endswith("_bucket"):
                series.setdefault(tuple(sorted(plain.items())), []).append(sample.labels["le"])
        out[fam.name] = Family(
            name=fam.name,
            type=fam.type,
            labels=frozenset(labels),
            values={k: frozenset(v) for k, v in values.items()},
            buckets=frozenset(tuple(les) for les in series.values()),
        )
    return out


def metric_differences(expected: str, actual: str) -> list[str]:
    """What ``actual``'s /metrics lacks, adds or shapes otherwise than ``expected``'s."""
    want, got = families(expected), families(actual)
    out = [f"missing family {n} ({want[n].type})" for n in sorted(want.keys() - got.keys())]
    out += [
        f"extra family {n} ({got[n].type})"
        for n in sorted(got.keys() - want.keys())
        if not n.startswith(SIM_ONLY_PREFIX)
    ]
    for name in sorted(want.keys() & got.keys()):
        w, g = want[name], got[name]
        if w.type != g.type:
            out.append(f"{name}: type {g.type}, vLLM's is {w.type}")
        if w.labels != g.labels:
            out.append(f"{name}: labels {sorted(g.labels)}, vLLM's are {sorted(w.labels)}")
        compared = w.labels & g.labels & FIXED_LABELS
        if name == "vllm:cache_config_info":
            compared = (w.labels & g.labels) - SIM_OWN_CACHE_CONFIG
        for label in sorted(compared):
            if w.values[label] != g.values[label]:
                out.append(
                    f"{name}: {label} values {sorted(g.values[label])}, "
                    f"vLLM's are {sorted(w.values[label])}"
                )
        if w.buckets != g.buckets:
            out.append(f"{name}: buckets {sorted(g.buckets)}, vLLM's are {sorted(w.buckets)}")
    return out


# -- JSON ----------------------------------------------------------------------


def shape(value: Any) -> Any:
    """``value`` with every scalar replaced by its type's name: same keys, same types."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def json_differences(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Keys missing or extra, and values of another type, recursively (with their path)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{where}.{k}: missing" for k in expected if k not in actual]
        out += [f"{where}.{k}: extra" for k in actual if k not in expected]
        for k in expected.keys() & actual.keys():
            out += json_differences(expected[k], actual[k], f"{where}.{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(actual)} items, vLLM's has {len(expected)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += json_differences(e, a, f"{where}[{i}]")
        return out
    if shape(expected) != shape(actual):
        return [f"{where}: {shape(actual)}, vLLM's is {shape(expected)}"]
    return []


def sse_chunks(raw: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """A stream's JSON chunks, and every event's data as sent (``[DONE]`` included)."""
    text = raw.decode()
    assert text.endswith("\n\n"), "an SSE stream ends its last event with a blank line"
    events = [event for event in text.split("\n\n") if event]
    assert all(event.startswith("data: ") for event in events), events
    data = [event[len("data: ") :] for event in events]
    return [json.loads(d) for d in data if d != "[DONE]"], data


def chunk_kind(chunk: dict[str, Any]) -> str:
    """role (the first, empty delta), content, finish (with finish_reason) or usage."""
    if not chunk["choices"]:
        return "usage"
    choice = chunk["choices"][0]
    if "role" in choice.get("delta", {}):
        return "role"
    return "content" if choice["finish_reason"] is None else "finish"


def message_pattern(message: str) -> str:
    """An error message with its numbers and file paths as placeholders."""
    message = re.sub(r"/[\w.\-]+(?:/[\w.\-]+)*", "<path>", message)
    return re.sub(r"\d+", "<n>", message)


# -- start-up failures -------------------------------------------------------------------

_EXCEPTION_LINE = re.compile(r"^(?:\(\w+ pid=\d+\) ERROR [^\]]*\] )?(\S*(?:Error|Exception)\b.*)$")
_NOT_THE_CAUSE = (
    "Engine core initialization failed",  # vLLM's closing line for any engine-side cause
    "Worker failed with error",  # the engine core repeating its worker's error
    "WorkerProc initialization failed",  # the worker's own closing line
    "WARNING",
)


def root_cause(log: str) -> str:
    """The last line of a failed start that names the exception causing it, as vLLM
    prints it (its process prefix dropped); the pydantic ValidationError header yields to
    its 'Value error, ...' line, which says what was wrong."""
    found = []
    for raw in log.splitlines():
        line = raw.rstrip()
        if line.lstrip().startswith("Value error, "):
            found.append(line.strip())
            continue
        match = _EXCEPTION_LINE.match(line)
        if (
            match
            and not any(text in line for text in _NOT_THE_CAUSE)
            and not match.group(1).startswith("pydantic_core._pydantic_core.ValidationError")
        ):
            found.append(match.group(1).strip())
    return found[-1] if found else "(no error line)"
