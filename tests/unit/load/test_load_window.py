"""Windowing, percentiles and failure names of the load runner (pure logic)."""

from __future__ import annotations

import errno
import socket

import pytest
from geventhttpclient.response import HTTPConnectionClosed
from geventhttpclient.useragent import BadStatusCode, RetriesExceeded

from gameday.load.window import RequestError, Window, failure_message, percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7.0], 50, 7.0),
        ([7.0], 95, 7.0),
        ([1.0, 2.0], 50, 1.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 50, 3.0),
        ([5.0, 1.0, 4.0, 2.0, 3.0], 0, 1.0),
        ([5.0, 1.0, 4.0, 2.0, 3.0], 100, 5.0),
        # numpy.percentile(range(1, 101), 95) == 95.05 (linear interpolation)
        ([float(v) for v in range(1, 101)], 95, 95.05),
        ([float(v) for v in range(100, 0, -1)], 50, 50.5),
    ],
)
def test_percentile_interpolates_between_closest_ranks(
    values: list[float], q: float, expected: float | None
) -> None:
    result = percentile(values, q)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_percentile_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_empty_window_has_no_percentiles_and_no_error_ratio() -> None:
    sample = Window(start=100.0).close(end=101.0, t=1_700_000_000.0, users=3)
    assert sample.users == 3
    assert (sample.requests, sample.failures, sample.rps, sample.error_ratio) == (0, 0, 0.0, 0.0)
    assert sample.p50_ms is sample.p95_ms is sample.ttft_p50_ms is sample.ttft_p95_ms is None
    assert sample.output_tokens == 0
    assert sample.errors == ()


def test_window_counts_rates_and_percentiles_of_successes_only() -> None:
    window = Window(start=10.0)
    for ms in (100.0, 200.0, 300.0, 400.0):
        window.record(ms, ttft_ms=ms / 10, output_tokens=8)
    window.record(0.3, error="ConnectionRefusedError")
    window.record(5.0, error="HTTP 503")
    window.record(6.0, error="HTTP 503", output_tokens=2)
    sample = window.close(end=12.0, t=1_700_000_002.0, users=4)
    assert sample.t == 1_700_000_002.0
    assert sample.requests == 7
    assert sample.failures == 3
    assert sample.rps == pytest.approx(3.5)  # 7 requests over a 2 s window
    assert sample.error_ratio == pytest.approx(3 / 7, abs=1e-4)
    # the fast failures do not drag the latency percentiles down
    assert sample.p50_ms == pytest.approx(250.0)
    assert sample.p95_ms == pytest.approx(385.0)
    assert sample.ttft_p50_ms == pytest.approx(25.0)
    assert sample.output_tokens == 34
    assert sample.errors == (("HTTP 503", 2), ("ConnectionRefusedError", 1))
    assert sample.error_counts == {"HTTP 503": 2, "ConnectionRefusedError": 1}


def test_all_failures_give_ratio_one_and_no_latency() -> None:
    window = Window(start=0.0)
    for _ in range(5):
        window.record(0.2, error="ConnectionRefusedError")
    sample = window.close(end=1.0, t=1.0, users=2)
    assert sample.error_ratio == 1.0
    assert sample.p50_ms is None
    assert sample.errors == (("ConnectionRefusedError", 5),)


def test_windows_are_not_cumulative() -> None:
    first = Window(start=0.0)
    first.record(10.0, output_tokens=4)
    assert first.close(end=1.0, t=1.0, users=1).requests == 1
    second = Window(start=1.0)
    assert second.close(end=2.0, t=2.0, users=1).requests == 0


def test_samples_are_hashable_and_equal_windows_compare_equal() -> None:
    def sample() -> object:
        window = Window(start=0.0)
        window.record(1.0, error="b")
        window.record(1.0, error="a")
        return window.close(end=1.0, t=5.0, users=1)

    assert sample() == sample()
    assert hash(sample()) == hash(sample())


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (RequestError("IncompleteStream"), "IncompleteStream"),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            "ConnectionRefusedError",
        ),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "ConnectionResetError"),
        (TimeoutError("timed out"), "timeout"),
        (OSError(errno.ETIMEDOUT, "timed out"), "timeout"),
        (socket.gaierror(-2, "Name or service not known"), "NameResolutionError"),
        (BadStatusCode("http://127.0.0.1:9/v1/chat/completions", code=503), "HTTP 503"),
        (
            RetriesExceeded("http://h/x", 0, original=TimeoutError("timed out")),
            "timeout",
        ),
        (
            RetriesExceeded("http://h/x", 0, original=BadStatusCode("http://h/x", code=429)),
            "HTTP 429",
        ),
        (HTTPConnectionClosed("connection closed."), "RemoteDisconnected"),
        (ValueError("something else"), "ValueError"),
    ],
)
def test_failure_messages_are_short_and_stable(exc: BaseException, message: str) -> None:
    assert failure_message(exc) == message


def test_failure_message_survives_a_cycle_of_originals() -> None:
    exc = RetriesExceeded("http://h/x", 0)
    exc.__dict__["original"] = exc
    assert failure_message(exc) == "RetriesExceeded"
