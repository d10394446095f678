"""The masking rules: known values, secret names, secret shapes; and what must stay."""

from __future__ import annotations

import io
import json
import logging
import random
from pathlib import Path

import pytest

from gameday.core.errors import InputError
from gameday.core.events import Event, EventBus, LogLine, ProcessStarted
from gameday.core.journal import Journal
from gameday.core.redact import (
    MASK,
    MaskingFormatter,
    is_secret_name,
    redact,
    redact_text,
    remember_secret,
    remember_secrets_in,
)
from gameday.targets.kubernetes.cluster import current_context


@pytest.mark.parametrize(
    "name",
    [
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "OPENAI_API_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "--api-key",
        "--hf-token",
        "Authorization",
        "client-key-data",
        "password",
        "DB_PASSWD",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "max_tokens",
        "prompt_tokens",
        "--max-model-len",
        "KUBECONFIG",
        "author",
        "GAMEDAY_PROCESS_TOKEN",
        "client-certificate-data",
        "PATH",
        "--decode-ms-per-token",  # an amount
        "max_token",
        "SSH_AUTH_SOCK",  # a socket
        "token-file",  # a path
        "AUTH_HOST",
    ],
)
def test_names_that_are_not_secrets(name: str) -> None:
    assert not is_secret_name(name)


def test_a_scenario_spec_is_masked_by_where_its_values_sit() -> None:
    spec = {
        "target": {
            "local": {
                "server": {
                    "env": {"HF_TOKEN": "hf_xyzxyzxyz", "VLLM_LOGGING_LEVEL": "INFO"},
                    "args": ["--api-key", "sk-one-two-three", "--max-num-seqs", "4"],
                    "engine_args": {"vllm": ["--api-key=sk-four-five-six"]},
                }
            }
        },
        "load": {"max_tokens": 32, "prompt_tokens": 8},
    }
    server = redact(spec)["target"]["local"]["server"]
    assert server["env"] == {"HF_TOKEN": MASK, "VLLM_LOGGING_LEVEL": "INFO"}
    assert server["args"] == ["--api-key", MASK, "--max-num-seqs", "4"]
    assert server["engine_args"] == {"vllm": [f"--api-key={MASK}"]}
    assert redact(spec)["load"] == {"max_tokens": 32, "prompt_tokens": 8}


def test_a_remembered_secret_is_masked_inside_any_text() -> None:
    remember_secrets_in({"env": {"MY_SERVICE_TOKEN": "tok-9f8e7d6c5b"}})
    line = "starting: using tok-9f8e7d6c5b for the hub (tok-9f8e7d6c5b)"
    assert redact_text(line) == f"starting: using {MASK} for the hub ({MASK})"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Authorization: Bearer abc.def-ghi", f"Authorization: Bearer {MASK}"),
        ("x-api-key: q1w2e3r4", f"x-api-key: {MASK}"),
        ("https://user:hunter22@registry.example/v2", f"https://user:{MASK}@registry.example/v2"),
        ("vllm serve m --api-key sk-abc --port 1", f"vllm serve m --api-key {MASK} --port 1"),
        (
            "non-default args: {'api_key': ['sk-abc123']}",
            f"non-default args: {{'api_key': ['{MASK}']}}",
        ),
    ],
)
def test_secret_shapes_are_masked_without_being_known(text: str, masked: str) -> None:
    assert redact_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "--- server attempt 2 pid 4123 ---",
        'INFO: 127.0.0.1:5321 - "POST /v1/chat/completions HTTP/1.1" 200 OK',
        "vllm serve /m --max-model-len 512 --port 8000",
        "rbac.authorization.k8s.io/v1 roles",
        "a non-token word",
        "sim serve --decode-ms-per-token 3 --prefill-ms-per-token 0.1",
        '"detail": "serve --hf-token-file /run/secrets/hf"',
    ],
)
def test_ordinary_lines_are_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_a_flag_value_in_quoted_text_keeps_its_quotes() -> None:
    # report.json once lost a quote and a comma here (a JSON string cut open)
    text = '{"detail": "vllm serve --api-key sk-abcdef", "next": 1}'
    assert json.loads(redact_text(text)) == {"detail": f"vllm serve --api-key {MASK}", "next": 1}


def test_masking_never_fails_and_is_idempotent() -> None:
    rng = random.Random(7)
    alphabet = "abc XYZ-_=:/@'\"[]{}\n\t\x00\u00e9\u4e2d" + "--api-key Bearer token "
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(80)))
        once = redact_text(text)
        assert redact_text(once) == once, text


def test_the_harness_log_lines_are_masked_tracebacks_included() -> None:
    remember_secret("hf_logline0123456789")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(MaskingFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("gameday.test-masking")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET %s said 401 to Authorization: Bearer abc.def", "http://u:pw@h/x")
        try:
            raise RuntimeError("token hf_logline0123456789 refused")
        except RuntimeError:
            logger.exception("pull failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "hf_logline0123456789" not in written and "abc.def" not in written
    assert ":pw@" not in written
    assert f"Authorization: Bearer {MASK}" in written
    assert "RuntimeError: token [redacted] refused" in written  # the traceback, masked


def test_the_bus_and_the_journal_write_secrets_masked(tmp_path: Path) -> None:
    remember_secret("sk-planted-in-a-log")
    journal = Journal(tmp_path / "journal.jsonl", "run")
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(journal.record_event)
    bus.subscribe(seen.append)
    bus.emit(LogLine(source="server", stream="stdout", line="key=sk-planted-in-a-log"))
    bus.emit(
        ProcessStarted(
            process="server", pid=1, attempt=1, command=("vllm", "--api-key", "sk-unknown-0")
        )
    )
    journal.close()
    text = (tmp_path / "journal.jsonl").read_text()
    assert "sk-planted-in-a-log" not in text and "sk-unknown-0" not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert records[0]["line"] == f"key={MASK}"
    assert records[1]["command"] == ["vllm", "--api-key", MASK]
    assert seen[0] == LogLine(
        ts=seen[0].ts,
        source="server",
        stream="stdout",
        line=f"key={MASK}",
    )


def test_a_kubeconfig_goes_through_the_one_input_path(tmp_path: Path) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_bytes(b"apiVersion: v1\nusers:\n  - {name: u, user: {token: \xff}}\n")
    with pytest.raises(InputError, match=r"kubeconfig:3:.*not UTF-8"):
        current_context(str(broken))
    broken.write_text("- just\n- a list\n")
    with pytest.raises(InputError, match="one YAML mapping"):
        current_context(str(broken))
    broken.write_text("a: " + "[" * 100 + "]" * 100 + "\n")
    with pytest.raises(InputError, match="invalid YAML: nested deeper"):
        current_context(str(broken))
    broken.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(InputError, match=r"not a usable kubeconfig: .*current-context"):
        current_context(str(broken))
