"""Under concurrent load: queueing, a full KV cache, preemption, and aborts on disconnect."""

from __future__ import annotations

import socket
import threading

import httpx
import pytest

from tests.integration.sim.support import StartSim, wait_until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("release", "warns"),
    [("0.32", False), ("0.7", True)],
    ids=["v1-engine-preempts-silently", "v0-engine-warns"],
)
def test_a_small_kv_cache_queues_and_preempts_but_answers_everyone(
    start_sim: StartSim, release: str, warns: bool
) -> None:
    # 16 blocks of 16 tokens; each request grows to 20 + 100 tokens (8 blocks).
    sim = start_sim(
        "--kv-cache-tokens", "256", "--block-size", "16", "--max-model-len", "256",
        "--max-num-seqs", "8", "--decode-ms-per-token", "5", "--prefill-ms-per-token", "0",
        "--vllm-version", release,
    )  # fmt: skip
    results: list[httpx.Response] = []
    seen = {"waiting": 0.0, "usage": 0.0}
    done = threading.Event()

    def client(i: int) -> None:
        results.append(sim.chat(f"{i} " + "word " * 19, max_tokens=100, ignore_eos=True))

    def watch() -> None:
        while not done.is_set():
            seen["waiting"] = max(seen["waiting"], sim.value("vllm:num_requests_waiting"))
            seen["usage"] = max(seen["usage"], sim.value("vllm:kv_cache_usage_perc"))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    watcher.join()

    assert [r.status_code for r in results] == [200] * 12
    assert all(r.json()["usage"]["completion_tokens"] == 100 for r in results)
    assert seen["waiting"] > 0
    assert seen["usage"] > 0.9
    assert sim.value("vllm:num_preemptions", "vllm:num_preemptions_total") > 0
    assert sim.value("vllm:kv_cache_usage_perc") == 0
    # V0 warned (the first time, then every 50th); V1, the default since 0.8, says nothing
    assert ("is preempted by PreemptionMode.RECOMPUTE mode" in sim.log()) is warns


def test_more_requests_than_max_num_seqs_wait_and_ttft_grows(start_sim: StartSim) -> None:
    sim = start_sim("--max-num-seqs", "2", "--decode-ms-per-token", "10")
    threads = [
        threading.Thread(target=sim.chat, kwargs={"max_tokens": 20, "ignore_eos": True})
        for _ in range(6)
    ]
    for t in threads:
        t.start()
    wait_until(lambda: sim.value("vllm:num_requests_waiting") == 4, 5, "4 waiting requests")
    assert sim.value("vllm:num_requests_running") == 2
    for t in threads:
        t.join(30)
    # The last pair waited for two full answers (2 x 20 steps of 10 ms) before its first token.
    within_250ms = sim.value(
        "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_bucket", le="0.25"
    )
    assert within_250ms <= 4


def test_a_client_that_disconnects_mid_stream_aborts_its_request(start_sim: StartSim) -> None:
    sim = start_sim("--decode-ms-per-token", "10")
    body = (
        b'{"messages":[{"role":"user","content":"a long story"}],'
        b'"max_tokens":1000,"ignore_eos":true,"stream":true}'
    )
    with socket.create_connection(("127.0.0.1", sim.port)) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        received = b""
        while received.count(b"data: ") < 5:
            received += conn.recv(65536)
        assert b"200 OK" in received
        assert sim.value("vllm:num_requests_running") == 1
    # The stream had ~10 s to go; the abort frees its blocks well before.
    wait_until(
        lambda: (
            sim.value("vllm:request_success", "vllm:request_success_total", finished_reason="abort")
            == 1
        ),
        5,
        "the request to be aborted",
    )
    assert sim.value("vllm:num_requests_running") == 0
    assert sim.value("vllm:kv_cache_usage_perc") == 0


def test_a_client_that_disconnects_while_waiting_aborts_its_request(start_sim: StartSim) -> None:
    sim = start_sim("--decode-ms-per-token", "10")
    body = b'{"messages":[{"role":"user","content":"wait"}],"max_tokens":1000,"ignore_eos":true}'
    with socket.create_connection(("127.0.0.1", sim.port)) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        wait_until(lambda: sim.value("vllm:num_requests_running") == 1, 5, "the request to run")
    # Noticed at once, not when the 10 s answer would have been written.
    wait_until(
        lambda: (
            sim.value("vllm:request_success", "vllm:request_success_total", finished_reason="abort")
            == 1
        ),
        2,
        "the request to be aborted",
    )
    assert sim.value("vllm:kv_cache_usage_perc") == 0
    handler = "/v1/chat/completions"
    assert sim.value("http_requests", "http_requests_total", handler=handler, status="4xx") == 1
