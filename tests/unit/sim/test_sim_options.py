"""Settings validated before anything is bound; upstream URLs; the upstream monitor."""

from __future__ import annotations

import socket
import threading

import pytest

from gameday.sim.options import SimOptions, parse_upstream
from gameday.sim.upstream import UpstreamMonitor


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 70000}, "--port must be between 0 and 65535"),
        ({"max_num_seqs": 0}, "--max-num-seqs must be at least 1"),
        ({"kv_cache_tokens": 0}, "--kv-cache-tokens must be at least 1"),
        ({"decode_ms_per_token": -1}, "--decode-ms-per-token must not be negative"),
        ({"flavor": "tgi"}, "--flavor must be vllm or sglang"),
        ({"vllm_version": "latest"}, "--vllm-version must look like 0.32 or 0.32.0"),
        ({"gpu_memory_utilization": 1.5}, "--gpu-memory-utilization must be in (0, 1]"),
    ],
)
def test_bad_settings_say_which_flag(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SimOptions(**kwargs)  # type: ignore[arg-type]


def test_vllm_version_in_full() -> None:
    assert SimOptions().vllm_version_text == "0.32.0"
    assert SimOptions(vllm_version="0.6").vllm_release == (0, 6, 0)
    assert SimOptions(vllm_version="0.6").vllm_version_text == "0.6.0"


def test_non_default_lists_what_was_changed() -> None:
    assert SimOptions(port=9000, decode_ms_per_token=1).non_default() == {
        "port": 9000,
        "decode_ms_per_token": 1,
    }


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("http://model-store.internal:8080/v1", "model-store.internal", 8080),
        ("https://auth.example", "auth.example", 443),
        ("model-store:9000", "model-store", 9000),
        ("redis", "redis", 80),
    ],
)
def test_upstream_urls(url: str, host: str, port: int) -> None:
    up = parse_upstream(url)
    assert (up.host, up.port, up.url) == (host, port, url)


def test_bad_upstream_url() -> None:
    with pytest.raises(ValueError, match="invalid upstream URL"):
        parse_upstream("http://:80")


def test_monitor_reports_each_resolution_until_stopped() -> None:
    outcomes: list[OSError | None] = []
    seen = threading.Event()
    answers = iter([None, socket.gaierror(-2, "Name or service not known"), None])

    def resolver(host: str, port: int) -> object:
        answer = next(answers)
        if answer is not None:
            raise answer
        return []

    def report(outcome: OSError | None) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 3:
            seen.set()

    monitor = UpstreamMonitor(parse_upstream("upstream:80"), 0.01, report, resolver)
    monitor.start()
    assert seen.wait(5)
    monitor.stop()
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], socket.gaierror)
    assert str(outcomes[1]) == "[Errno -2] Name or service not known"
