"""The JSON-line protocol between the load driver and the runner process."""

from __future__ import annotations

import json

import pytest

from gameday.load import LoadConfig, LoadSample, ThinkTime
from gameday.load.protocol import (
    parse_command,
    set_shape_command,
    set_users_command,
    stop_command,
)
from gameday.scenario.model import LoadSpec


def test_config_round_trips_through_json() -> None:
    config = LoadConfig(
        host="http://127.0.0.1:8000",
        model="m",
        profile="openai-completions",
        users=3,
        spawn_rate=1.5,
        stream=False,
        prompt_tokens=100,
        max_tokens=7,
        think_time=ThinkTime(0.0, 0.2),
        request_timeout=5.0,
    )
    assert LoadConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["think_time"] == {"min": 0.0, "max": 0.2}


def test_config_defaults_from_minimal_json() -> None:
    config = LoadConfig.from_json('{"host": "http://localhost:8000"}')
    assert config.model is None
    assert config.profile == "openai-chat"
    assert config.stream is True
    assert config.think_time == ThinkTime()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ("{}", "needs a host"),
        ('{"host": "localhost:8000"}', "http"),
        ('{"host": "http://h", "users": -1}', "users"),
        ('{"host": "http://h", "users": true}', "users"),
        ('{"host": "http://h", "spawn_rate": 0}', "spawn_rate"),
        ('{"host": "http://h", "profile": "grpc"}', "profile"),
        ('{"host": "http://h", "prompt_tokens": 0}', "prompt_tokens"),
        ('{"host": "http://h", "max_tokens": 1.5}', "max_tokens"),
        ('{"host": "http://h", "request_timeout": 0}', "request_timeout"),
        ('{"host": "http://h", "think_time": {"min": 2, "max": 1}}', "think_time.max"),
        ('{"host": "http://h", "think_time": {"mean": 1}}', "think_time field"),
        ('{"host": "http://h", "userz": 3}', "unknown load config field"),
    ],
)
def test_invalid_configs_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadConfig.from_json(text)


def test_config_from_a_scenario_load_spec() -> None:
    spec = LoadSpec.model_validate(
        {"users": 4, "stream": False, "think_time": {"min": "100ms", "max": "1s"}}
    )
    config = LoadConfig.from_spec(spec, host="http://127.0.0.1:9000")
    assert config.host == "http://127.0.0.1:9000"
    assert config.users == 4
    assert config.stream is False
    assert config.think_time == ThinkTime(0.1, 1.0)
    assert config.request_timeout == spec.request_timeout


def test_sample_round_trips_and_errors_are_an_object_on_the_wire() -> None:
    sample = LoadSample(
        t=1_700_000_000.5,
        users=8,
        requests=10,
        failures=3,
        rps=10.0,
        error_ratio=0.3,
        p50_ms=12.5,
        p95_ms=40.0,
        ttft_p50_ms=None,
        ttft_p95_ms=None,
        output_tokens=70,
        errors=(("HTTP 503", 2), ("timeout", 1)),
    )
    wire = json.loads(sample.to_json())
    assert wire["errors"] == {"HTTP 503": 2, "timeout": 1}
    assert set(wire) == {
        "t",
        "users",
        "requests",
        "failures",
        "rps",
        "error_ratio",
        "p50_ms",
        "p95_ms",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "output_tokens",
        "errors",
    }
    assert LoadSample.from_json(sample.to_json()) == sample


@pytest.mark.parametrize("line", ["", "{", "[1]", '{"t": 1}', '{"t": "x", "users": 1}'])
def test_garbage_is_not_a_sample(line: str) -> None:
    with pytest.raises(ValueError, match="not a load sample"):
        LoadSample.from_json(line)


def test_commands_round_trip() -> None:
    assert parse_command(set_users_command(5, 2.0)) == (
        "set_users",
        {"users": 5, "spawn_rate": 2.0},
    )
    assert parse_command(set_shape_command(4000, 16)) == (
        "set_shape",
        {"prompt_tokens": 4000, "max_tokens": 16},
    )
    assert parse_command(stop_command()) == ("stop", {})
    assert parse_command('{"op": "set_users", "users": 0}') == ("set_users", {"users": 0})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nope", "not JSON"),
        ('{"users": 1}', '"op"'),
        ('{"op": "explode"}', "unknown command"),
        ('{"op": "set_users", "users": -2}', "users"),
        ('{"op": "set_users", "users": 2, "spawn_rate": 0}', "spawn_rate"),
        ('{"op": "set_shape", "prompt_tokens": 10}', "max_tokens"),
    ],
)
def test_invalid_commands_are_refused(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_command(line)


def test_command_builders_validate() -> None:
    with pytest.raises(ValueError, match="users"):
        set_users_command(-1, 1.0)
    with pytest.raises(ValueError, match="prompt_tokens"):
        set_shape_command(0, 1)
