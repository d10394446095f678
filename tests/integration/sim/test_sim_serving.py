"""The OpenAI API over real HTTP: shapes, streaming format, errors, metrics, shutdown."""

from __future__ import annotations

import json
import signal
import socket

import httpx
import pytest

from tests.integration.sim.support import Sim, StartSim

pytestmark = pytest.mark.integration

FAST = ("--decode-ms-per-token", "1", "--prefill-ms-per-token", "0")


@pytest.fixture
def sim(start_sim: StartSim) -> Sim:
    return start_sim(*FAST)


def sse_events(response: httpx.Response) -> list[str]:
    return [
        line[len("data: ") :] for line in response.text.split("\n\n") if line.startswith("data: ")
    ]


def test_the_builtin_model_is_ready_within_two_seconds(start_sim: StartSim) -> None:
    sim = start_sim(wait=False)
    assert sim.wait_healthy() < 2.0
    log = sim.log()
    for line in (
        "Starting to load model gameday-sim-tiny...",
        "Loading weights took",
        "Available KV cache memory: 0.06 GiB",
        "GPU KV cache size: 16,384 tokens",
        "Maximum concurrency for 4,096 tokens per request: 4.00x",
        "INFO:     Application startup complete.",
    ):
        assert line in log


def test_models_lists_the_served_model(start_sim: StartSim) -> None:
    sim = start_sim(*FAST, "--served-model-name", "llama-3-8b")
    card = httpx.get(f"{sim.base}/v1/models").json()["data"][0]
    assert card["id"] == "llama-3-8b" and card["object"] == "model"
    assert card["max_model_len"] == 4096 and card["owned_by"] == "vllm"


def test_chat_completion_shape(sim: Sim) -> None:
    r = sim.chat("tell me about game days", max_tokens=5)
    assert r.status_code == 200
    body = r.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "gameday-sim-tiny" and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant"
    assert len(choice["message"]["content"].split()) == 5
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 5,
        "total_tokens": 10,
        "prompt_tokens_details": None,
        "completion_tokens_details": None,
    }
    # Same prompt, same answer.
    assert sim.chat("tell me about game days", max_tokens=5).json()["choices"] == [choice]


def test_without_max_tokens_the_model_stops_by_itself(sim: Sim) -> None:
    body = sim.chat("a question").json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert 16 <= body["usage"]["completion_tokens"] <= 128


def test_completion_shape_and_default_max_tokens(sim: Sim) -> None:
    r = httpx.post(
        f"{sim.base}/v1/completions", json={"prompt": "once upon a time", "ignore_eos": True}
    )
    body = r.json()
    assert body["object"] == "text_completion" and body["id"].startswith("cmpl-")
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 16 and body["usage"]["prompt_tokens"] == 4


def test_streaming_chat_chunks_end_with_done(sim: Sim) -> None:
    r = sim.chat("stream me", max_tokens=6, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert len(text.split()) == 6
    assert [c["choices"][0]["finish_reason"] for c in content][-1] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in content[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}
    # Streaming and non-streaming answer the same text.
    assert sim.chat("stream me", max_tokens=6).json()["choices"][0]["message"]["content"] == text


def test_streaming_completions(sim: Sim) -> None:
    r = httpx.post(
        f"{sim.base}/v1/completions",
        json={"prompt": "count", "max_tokens": 3, "stream": True},
    )
    events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    assert len("".join(c["choices"][0]["text"] for c in chunks).split()) == 3


def test_unknown_model_is_vllms_404(sim: Sim) -> None:
    r = sim.chat(model="gpt-5")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "The model `gpt-5` does not exist. Valid aliases: gameday-sim-tiny.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }


def test_too_long_requests_get_vllms_400(start_sim: StartSim) -> None:
    """vLLM 0.32's checks: max_tokens beyond max_model_len, a prompt beyond it (counted
    up to max_model_len + 1 tokens); what does not fit beside the prompt is cut off."""
    sim = start_sim(*FAST, "--max-model-len", "64")
    r = sim.chat("word " * 70)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "message": "This model's maximum context length is 64 tokens. However, your prompt "
        "contains at least 65 input tokens, which exceeds this limit even without any output "
        "tokens. Please reduce the length of the input prompt. (parameter=input_tokens, "
        "value=65)",
        "type": "BadRequestError",
        "param": "input_tokens",
        "code": 400,
    }
    r = sim.chat("word " * 10, max_tokens=65)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "message": "max_tokens=65 cannot be greater than max_model_len=64. Please request "
        "fewer output tokens. (parameter=max_tokens, value=65)",
        "type": "BadRequestError",
        "param": "max_tokens",
        "code": 400,
    }
    r = sim.chat("word " * 10, max_completion_tokens=100)
    assert r.json()["error"]["param"] == "max_completion_tokens"
    r = sim.chat("word " * 10, max_tokens=60, ignore_eos=True)
    assert r.status_code == 200
    assert r.json()["usage"]["completion_tokens"] == 64 - 10
    assert r.json()["choices"][0]["finish_reason"] == "length"
    r = sim.chat("word " * 64)
    assert r.json()["error"]["message"] == (
        "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"
    )


def test_malformed_requests_are_400(sim: Sim) -> None:
    r = httpx.post(f"{sim.base}/v1/chat/completions", content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["type"] == "BadRequestError"
    assert httpx.post(f"{sim.base}/v1/chat/completions", json={"messages": []}).status_code == 400


def test_metrics_have_vllms_names_types_and_labels(sim: Sim) -> None:
    """A few families by hand (test_vllm_conformance compares all of them with vLLM's)."""
    sim.chat(max_tokens=4)
    sim.chat(max_tokens=4, stream=True)
    sim.chat(model="unknown")
    fams = sim.metrics()
    expected = {
        "vllm:num_requests_running": "gauge",
        "vllm:num_requests_waiting": "gauge",
        "vllm:kv_cache_usage_perc": "gauge",
        "vllm:time_to_first_token_seconds": "histogram",
        "vllm:inter_token_latency_seconds": "histogram",
        "vllm:e2e_request_latency_seconds": "histogram",
        "vllm:request_success": "counter",
        "vllm:prompt_tokens": "counter",
        "vllm:generation_tokens": "counter",
        "vllm:num_preemptions": "counter",
        "http_requests": "counter",
        "gameday_sim_info": "gauge",
    }
    for name, typ in expected.items():
        assert fams[name].type == typ, name
    for name in expected:
        if name.startswith("vllm:"):
            for s in fams[name].samples:
                assert s.labels["model_name"] == "gameday-sim-tiny" and s.labels["engine"] == "0"
    assert (
        sim.value("vllm:request_success", "vllm:request_success_total", finished_reason="length")
        == 2
    )
    assert sim.value("vllm:generation_tokens", "vllm:generation_tokens_total") == 8
    assert (
        sim.value("vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count") == 2
    )
    handler = "/v1/chat/completions"
    assert sim.value("http_requests", "http_requests_total", handler=handler, status="2xx") == 2
    assert sim.value("http_requests", "http_requests_total", handler=handler, status="4xx") == 1
    (info,) = fams["gameday_sim_info"].samples
    assert info.labels["kv_cache_backend"] == "cpu-simulated"
    assert "vllm:gpu_cache_usage_perc" not in fams


def test_deprecated_and_sglang_metric_names(start_sim: StartSim) -> None:
    old = start_sim(*FAST, "--deprecated-metrics")
    old.chat(max_tokens=3)
    fams = old.metrics()
    assert fams["vllm:gpu_cache_usage_perc"].type == "gauge"
    assert fams["vllm:time_per_output_token_seconds"].type == "histogram"
    sglang = start_sim(*FAST, "--flavor", "sglang")
    sglang.chat(max_tokens=3)
    fams = sglang.metrics()
    for name in ("sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:token_usage"):
        assert fams[name].type == "gauge"
    assert fams["sglang:time_to_first_token_seconds"].type == "histogram"
    assert sglang.value("sglang:generation_tokens", "sglang:generation_tokens_total") == 3
    assert not any(name.startswith("vllm:") for name in fams)


def test_sigterm_is_a_graceful_exit_0(sim: Sim) -> None:
    sim.proc.send_signal(signal.SIGTERM)
    assert sim.wait_exit() == 0
    log = sim.log()
    assert "Shutting down (SIGTERM)" in log and "Application shutdown complete." in log


def test_pipelined_requests_in_pieces_are_answered_in_order(sim: Sim) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).encode()
    chat = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    data = chat + b"GET /health HTTP/1.1\r\nHost: sim\r\n\r\n" + chat
    with socket.create_connection(("127.0.0.1", sim.port)) as conn:
        for i in range(0, len(data), 7):  # in small pieces, split anywhere
            conn.sendall(data[i : i + 7])
        conn.settimeout(10)
        received = b""
        while received.count(b"HTTP/1.1 ") < 3 or not received.endswith(b"}"):
            received += conn.recv(65536)
    assert received.count(b"HTTP/1.1 ") == received.count(b"HTTP/1.1 200 OK") == 3
    first, second = (part for part in received.split(b"HTTP/1.1 200 OK")[1:] if b"{" in part)
    assert json.loads(first.split(b"\r\n\r\n", 1)[1])["usage"]["completion_tokens"] == 2
    assert json.loads(second.split(b"\r\n\r\n", 1)[1])["usage"]["completion_tokens"] == 2
    assert received.index(b"content-length: 0") < received.rindex(b"chat.completion")


def test_api_key_guards_the_api_as_vllm_does(start_sim: StartSim) -> None:
    # vLLM 0.32's AuthenticationMiddleware: /v1/... needs the bearer token, 401
    # {"error":"Unauthorized"} otherwise; /health and /metrics stay open
    sim = start_sim("--api-key", "sk-one", "--api-key", "sk-two")
    refused = httpx.get(f"{sim.base}/v1/models")
    assert (refused.status_code, refused.json()) == (401, {"error": "Unauthorized"})
    wrong = httpx.get(f"{sim.base}/v1/models", headers={"Authorization": "Bearer sk-three"})
    assert wrong.status_code == 401
    for key in ("sk-one", "sk-two"):
        ok = httpx.get(f"{sim.base}/v1/models", headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
    assert httpx.get(f"{sim.base}/health").status_code == 200
    assert httpx.get(f"{sim.base}/metrics").status_code == 200
    assert "sk-one" not in sim.log()  # its non-default args say '***'
