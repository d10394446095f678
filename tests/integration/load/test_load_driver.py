"""The load driver against the real simulator, with Locust in its own process."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import gameday
from gameday.core.errors import ComponentMissing, ComponentUnreachable
from gameday.load import LoadConfig, LoadDriver, LoadSample, ThinkTime
from tests.integration.load.loadtest_support import SampleLog, Simulator, free_port

pytestmark = pytest.mark.integration

FAST_THINK = ThinkTime(0.0, 0.05)


def config(sim_url: str, **overrides: object) -> LoadConfig:
    fields: dict[str, object] = {
        "host": sim_url,
        "users": 4,
        "spawn_rate": 100.0,
        "max_tokens": 8,
        "prompt_tokens": 16,
        "think_time": FAST_THINK,
        "request_timeout": 10.0,
    }
    fields.update(overrides)
    return LoadConfig(**fields)  # type: ignore[arg-type]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def healthy(sample: LoadSample) -> bool:
    return sample.requests > 0 and sample.failures == 0


def tokens_per_request(sample: LoadSample) -> float:
    return sample.output_tokens / sample.requests if sample.requests else 0.0


def test_streaming_chat_samples_every_second(simulator: Simulator, samples: SampleLog) -> None:
    with LoadDriver(config(simulator.url), samples) as load:
        assert load.pid is not None
        samples.wait_for(healthy, timeout=10, what="successful requests")
        window = samples.next(3)
    for earlier, later in itertools.pairwise(window):
        assert 0.8 < later.t - earlier.t < 1.2
    for sample in window:
        assert sample.users == 4
        assert sample.failures == 0 and sample.error_ratio == 0.0
        assert sample.requests > 0 and sample.rps == pytest.approx(sample.requests, rel=0.25)
        assert sample.p50_ms is not None and sample.p95_ms is not None
        assert 0 < sample.p50_ms <= sample.p95_ms < 10_000
        assert sample.ttft_p50_ms is not None and sample.ttft_p95_ms is not None
        # the first token comes before the last one
        assert 0 < sample.ttft_p50_ms < sample.p50_ms
        assert tokens_per_request(sample) == pytest.approx(8, abs=0.5)
        assert sample.errors == ()
    assert "locust" not in sys.modules


def test_driver_module_pulls_in_neither_locust_nor_gevent() -> None:
    # checked in a fresh interpreter: this test process may have imported gevent for
    # the unit tests of the failure names
    code = (
        "import sys, gameday.load, gameday.load.driver, gameday.load.protocol, "
        "gameday.load.window; print(sorted(m for m in ('locust', 'gevent', "
        "'geventhttpclient') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert out.stdout.strip() == "[]"


def test_non_streaming_completions(simulator: Simulator, samples: SampleLog) -> None:
    cfg = config(simulator.url, profile="openai-completions", stream=False, max_tokens=5)
    with LoadDriver(cfg, samples):
        sample = samples.wait_for(healthy, timeout=10, what="successful requests")
    assert sample.p50_ms is not None and sample.p50_ms > 0
    assert sample.ttft_p50_ms is None  # nothing streamed, no first token to time
    assert tokens_per_request(sample) == pytest.approx(5, abs=0.5)
    assert "locust" not in sys.modules


def test_outage_shows_as_connection_errors_and_recovery(
    simulator_factory: Callable[..., Simulator], samples: SampleLog
) -> None:
    sim = simulator_factory("--decode-ms-per-token", "2")
    # the runner starts before the server: it must keep asking for the model
    with LoadDriver(config(sim.url), samples):
        down = samples.wait_for(lambda s: s.requests > 0, timeout=10, what="requests")
        assert down.error_ratio == 1.0
        assert down.error_counts.keys() == {"ConnectionRefusedError"}

        sim.start()
        samples.wait_for(healthy, timeout=15, what="recovery after the server came up")

        sim.kill()
        crashed = samples.wait_for(
            lambda s: s.requests > 0 and s.error_ratio == 1.0, timeout=10, what="only failures"
        )
        samples.wait_for(
            lambda s: s.error_counts.keys() == {"ConnectionRefusedError"},
            timeout=10,
            what="refused connections",
        )
        assert crashed.p50_ms is None  # latency covers successful requests only

        sim.start()
        back = samples.wait_for(healthy, timeout=15, what="recovery after the restart")
        assert back.error_ratio == 0.0 and back.p50_ms is not None


def test_set_users_and_set_shape_take_effect(simulator: Simulator, samples: SampleLog) -> None:
    with LoadDriver(config(simulator.url, users=2, max_tokens=12), samples) as load:
        samples.wait_for(
            lambda s: s.users == 2 and healthy(s) and tokens_per_request(s) == 12,
            timeout=10,
            what="2 users, 12 tokens a request",
        )
        load.set_users(6, spawn_rate=100)
        samples.wait_for(lambda s: s.users == 6 and healthy(s), timeout=10, what="6 users")
        load.set_shape(prompt_tokens=64, max_tokens=3)
        samples.wait_for(
            lambda s: healthy(s) and tokens_per_request(s) == 3,
            timeout=10,
            what="3 tokens a request",
        )
        load.set_users(0)
        samples.wait_for(lambda s: s.users == 0, timeout=10, what="0 users")
    assert "locust" not in sys.modules


def test_stop_flushes_and_leaves_no_process(simulator: Simulator, samples: SampleLog) -> None:
    load = LoadDriver(config(simulator.url), samples, env={"GAMEDAY_LOAD_TEST_MARK": "x1"})
    load.start()
    pid = load.pid
    assert pid is not None
    assert group_alive(pid)
    # env adds to the harness's environment, it does not replace it
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"GAMEDAY_LOAD_TEST_MARK=x1" in environ
    assert any(entry.startswith(b"PATH=") for entry in environ)
    samples.wait_for(healthy, timeout=10, what="successful requests")
    count = len(samples.samples)
    stopped_at = time.time()
    assert load.stop() == 0
    assert not group_alive(pid)
    assert load.returncode == 0
    assert not load.running
    # the partial last window is flushed on the way out
    assert len(samples.samples) > count
    assert samples.samples[-1].t >= stopped_at
    assert load.stop() == 0  # idempotent


def test_runner_stops_cleanly_on_sigterm_and_stdin_eof(
    simulator: Simulator, samples: SampleLog
) -> None:
    load = LoadDriver(config(simulator.url), samples)
    load.start()
    assert load.pid is not None
    os.kill(load.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while load.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert load.stop() == 0
    assert not group_alive(load.pid)

    # a harness that dies closes the runner's stdin: the runner must not outlive it
    process = subprocess.Popen(
        [sys.executable, "-m", "gameday.load.runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    # communicate() writes the config, then closes stdin: EOF right after the config
    out, _ = process.communicate(config(simulator.url).to_json().encode() + b"\n", timeout=15)
    assert process.returncode == 0
    lines = out.decode().splitlines()
    assert lines, "a final sample is flushed"
    for line in lines:
        LoadSample.from_json(line)  # nothing but samples on stdout


def test_timeouts_are_named(
    simulator_factory: Callable[..., Simulator], samples: SampleLog
) -> None:
    # a listening socket that never answers: connect succeeds, the request hangs
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        cfg = config(f"http://127.0.0.1:{port}", users=2, request_timeout=0.5, model="m")
        with LoadDriver(cfg, samples):
            sample = samples.wait_for(lambda s: s.requests > 0, timeout=10, what="requests")
    assert sample.error_counts.keys() == {"timeout"}


def test_missing_locust_is_component_missing(tmp_path: Path, samples: SampleLog) -> None:
    # a real interpreter that can import gameday but has no locust installed
    venv = tmp_path / "bare"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    src = str(Path(gameday.__file__).resolve().parents[1])
    env = {"PYTHONPATH": src}
    load = LoadDriver(
        config(f"http://127.0.0.1:{free_port()}"),
        samples,
        python=str(venv / "bin" / "python"),
        env=env,
    )
    with pytest.raises(ComponentMissing, match="locust is not importable"):
        load.start()
    assert load.pid is not None and not group_alive(load.pid)


def test_unusable_python_is_component_missing(tmp_path: Path, samples: SampleLog) -> None:
    load = LoadDriver(
        config("http://127.0.0.1:9"), samples, python=str(tmp_path / "no-such-python")
    )
    with pytest.raises(ComponentMissing, match="cannot start the load runner"):
        load.start()


def test_runner_that_dies_early_is_unreachable_with_its_stderr(
    tmp_path: Path, samples: SampleLog
) -> None:
    # an interpreter that cannot import gameday at all dies with a traceback
    env = {"PYTHONPATH": ""}  # in case the tests run with src on PYTHONPATH
    venv = tmp_path / "empty"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    load = LoadDriver(
        config("http://127.0.0.1:9"), samples, python=str(venv / "bin" / "python"), env=env
    )
    with pytest.raises(ComponentUnreachable, match=r"(?s)exit code 1.*No module named"):
        load.start()


def test_locust_warnings_go_to_the_run_log_not_the_terminal(
    simulator: Simulator, samples: SampleLog, caplog: pytest.LogCaptureFixture
) -> None:
    """A spawn rate over 100 makes Locust warn at start-up; the warning is kept in the
    run's locust.log (the first lines are kept, not only the last) and is not logged at
    WARNING, which the gameday command would print on the user's terminal."""
    caplog.set_level("DEBUG", logger="gameday.load.runner")
    with LoadDriver(config(simulator.url, spawn_rate=200.0), samples) as load:
        samples.wait_for(healthy, timeout=10, what="successful requests")
    spawn = [r for r in caplog.records if "spawn rate" in r.getMessage()]
    assert spawn, load.stderr_log()
    assert all(r.levelno == logging.DEBUG for r in spawn)
    assert "spawn rate" in load.stderr_log()
