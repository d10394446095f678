"""Can one Locust worker saturate the simulator? Sustained requests/s of both, as a ratio.

The simulator must never be the bottleneck of a game day: a game day measures the system
under test, so the load generator has to run out of CPU long before the simulator does.

Method (one run; needs 2 CPUs, ``wrk`` on PATH (Debian: ``apt-get install -y wrk``) and
``locust`` in this interpreter). Both sides are measured the same way, in the same run:

* The simulator (``python -m gameday.sim serve``) is pinned to CPU 0, the load generator of
  the moment to CPU 1, so each has exactly one core, as a game day on a small box has.
* The simulated GPU is made large (``--max-num-seqs 32768``, 4M tokens of KV cache,
  ``--max-num-batched-tokens 1048576``) and its prefill free, so only the simulator's CPU
  limits it, not the model it plays: at 15 ms a token a request lasts half a second, so
  saturating the simulator takes thousands of requests in flight (16384 connections,
  and a warm-up long enough for the requests that all started together to spread out).
  Tokens come at two paces: the default 15 ms apart (what a game day sees: every streamed
  token is a write for the simulator and a read for Locust) and 1 ms apart.
* Every request has the game-day default shape: a 32-word prompt starting with a unique
  nonce (no two prompts alike), ``max_tokens: 32``, chat completions, streamed or not.
* Simulator capacity: ``wrk`` (C, one thread) with a Lua script that builds each body, at
  two connection counts per pace; the better sustained rate counts. The simulator's CPU
  is sampled meanwhile: under 90% means wrk did not saturate it, and the table says so.
* Locust capacity: one ``locust --headless`` process, ``FastHttpUser`` with no wait time,
  with enough users to use its whole core, doing what the game-day user
  (``gameday.load.locustfile``) does with each answer: read the stream event by event
  (``readline``), parse every event's JSON, note the time to first token, and report TTFT
  and token count with the request event, under a whole-request ``gevent.Timeout``.
* Both rates are read the same way: from the simulator's own ``http_requests_total``
  (2xx) over the same steady window after the same warm-up, while both processes' CPU
  time is sampled.
* ``ratio`` = simulator rps / Locust rps. ``cpu ratio`` cross-checks it: Locust's CPU
  seconds per request over the simulator's, during the Locust run.

The simulator writes streams for at most half its time: when a pass over all streams
takes longer than what separates steps, the tokens of the steps it skips go out merged in
one SSE chunk (as vLLM merges deltas for a lagging consumer) instead of slowing its
simulated GPU. Under saturation that merges several tokens per chunk, and the streaming
capacity includes it. At the game-day pace the Locust run gets one event per token; at
1 ms a token, a pass over Locust's few hundred streams already outlasts a step, so Locust
gets about three tokens an event (and does more requests per second than it would
event by event): that row is the hardest for the ratio. The goal (ratio >= 3, exit 0)
is judged at the game-day pace, the one scenarios run at; the 1 ms rows are printed as a
stress point (measured at 2.6 to 3.2 for streaming on this 2-core machine).

The simulator's core is not reserved: other processes on the machine can take part of it
(the table's note says so when the core was busy but the simulator was not).

Run:  python benchmarks/sim_throughput.py [--window 6] [--warmup 8]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

PROMPT = (
    "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing "
    "matches under pale yellow lanterns near old stone bridges the quick brown fox jumps over"
)


@dataclass(frozen=True)
class Pacing:
    """How fast the simulated GPU emits tokens, and the concurrency that saturates each side."""

    name: str
    decode_ms: int
    wrk_connections: tuple[int, ...]
    locust_users: int


PACINGS = (
    # The simulator's default: tokens 15 ms apart, as a game day sees them.
    Pacing("game day, 15 ms/token", 15, (8192, 16384), 3072),
    # Fast tokens: fewer connections saturate both sides; streamed tokens arrive in bursts.
    Pacing("fast, 1 ms/token", 1, (1024, 4096), 512),
)
# Below this share of its core, the simulator was not saturated by wrk.
SATURATED_CPU = 0.9
# The simulator's core and the load generator's.
SIM_CPU, LOAD_CPU = 0, 1

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local prompt = "%(prompt)s"
local stream = "%(stream)s"
request = function()
  local body = '{"model":"%(model)s","messages":[{"role":"user","content":"'
    .. string.format("%%012x", math.random(0, 2^40)) .. ' ' .. prompt
    .. '"}],"max_tokens":32,"stream":' .. stream .. '}'
  return wrk.format(nil, nil, nil, body)
end
"""

LOCUSTFILE = """
import json, os, time, uuid
import gevent
from locust import FastHttpUser, task, constant

PROMPT = %(prompt)r
MODEL = %(model)r
STREAM = os.environ["SIM_BENCH_STREAM"] == "1"


class GameDayUser(FastHttpUser):
    wait_time = constant(0)
    max_retries = 0

    @task
    def chat(self):
        body = {"model": MODEL, "max_tokens": 32, "stream": STREAM,
                "messages": [{"role": "user", "content": uuid.uuid4().hex[:12] + " " + PROMPT}]}
        url = self.host + "/v1/chat/completions"
        started, start_time = time.perf_counter(), time.time()
        ttft, tokens, error, response = None, 0, None, None
        timer = gevent.Timeout(30)
        timer.start()
        try:
            response = self.client.client.urlopen(
                url, method="POST", payload=json.dumps(body),
                headers={"Content-Type": "application/json"})
            if STREAM:
                lines = response._response
                while True:
                    line = lines.readline(b"\\n")
                    if not line:
                        raise RuntimeError("IncompleteStream")
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    choices = json.loads(data).get("choices") or []
                    if choices and choices[0].get("delta", {}).get("content"):
                        tokens += 1
                        if ttft is None:
                            ttft = (time.perf_counter() - started) * 1000
                while lines.read(16384):
                    pass
            else:
                tokens = json.loads(response.read())["usage"]["completion_tokens"]
        except Exception as exc:
            error = exc
        finally:
            timer.close()
            if response is not None:
                response.release()
        self.environment.events.request.fire(
            request_type="POST", name="/v1/chat/completions",
            response_time=(time.perf_counter() - started) * 1000, response_length=0,
            response=None, context={}, exception=error, start_time=start_time, url=url,
            ttft_ms=ttft, output_tokens=tokens)
"""


@dataclass
class Measure:
    rps: float
    sim_cpu: float
    client_cpu: float
    setting: str
    # How busy the simulator's core was, whoever used it (other processes share it).
    core_busy: float = 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int) -> dict[str, object]:
    def setup() -> None:
        os.sched_setaffinity(0, {cpu})
        # Thousands of connections on each side.
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    return {"preexec_fn": setup}


class Counter:
    """The simulator's count of answered chat requests, read over one kept-alive connection.

    A new connection could wait seconds in a listen queue full of the generator's; each
    reading is timed at the middle of its round trip, as the simulator's own loop may be
    slow to get to it under saturation.
    """

    PATTERN = re.compile(
        r'^http_requests_total\{handler="/v1/chat/completions",.*status="2xx"\} (\S+)', re.M
    )

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def read(self) -> tuple[float, int]:
        """(when, how many requests were answered)."""
        for _ in range(3):
            started = time.monotonic()
            try:
                self.conn.request("GET", "/metrics")
                text = self.conn.getresponse().read().decode()
            except (OSError, http.client.HTTPException):
                self.conn.close()  # reconnects on the next request
                continue
            when = (started + time.monotonic()) / 2
            return when, sum(int(float(m)) for m in self.PATTERN.findall(text))
        raise SystemExit("cannot read the simulator's metrics")

    def keep_reading(self, seconds: float) -> None:
        """Wait ``seconds``, reading every second so the connection stays alive."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            if end - time.monotonic() > 0.5:
                self.read()


def window(
    counter: Counter, sim: psutil.Process, client: psutil.Process, args: argparse.Namespace
) -> Measure:
    """Sample the rate and both processes' CPU over ``args.window`` seconds."""
    counter.keep_reading(args.warmup)
    (t0, c0), s0, l0, b0 = counter.read(), cpu(sim), cpu(client), core_busy(SIM_CPU)
    counter.keep_reading(args.window)
    (t1, c1), s1, l1, b1 = counter.read(), cpu(sim), cpu(client), core_busy(SIM_CPU)
    elapsed = t1 - t0
    return Measure(
        (c1 - c0) / elapsed, (s1 - s0) / elapsed, (l1 - l0) / elapsed, "", (b1 - b0) / elapsed
    )


def core_busy(core: int) -> float:
    """CPU seconds ``core`` has spent busy, by any process."""
    t = psutil.cpu_times(percpu=True)[core]
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def wait_ready(base: str, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("the simulator did not become ready")


def run_wrk(
    base: str,
    counter: Counter,
    sim: psutil.Process,
    script: Path,
    conns: int,
    args: argparse.Namespace,
) -> Measure:
    duration = int(args.warmup + args.window + 2)
    proc = subprocess.Popen(
        ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "30s", "-s", str(script),
         f"{base}/v1/chat/completions"],
        stdout=subprocess.DEVNULL, **pinned(LOAD_CPU),
    )  # fmt: skip
    try:
        m = window(counter, sim, psutil.Process(proc.pid), args)
    finally:
        proc.wait()
    m.setting = f"wrk -c{conns}"
    return m


def run_locust(
    base: str,
    counter: Counter,
    sim: psutil.Process,
    locustfile: Path,
    stream: bool,
    users: int,
    args: argparse.Namespace,
) -> Measure:
    duration = int(args.warmup + args.window + 3)
    env = {**os.environ, "SIM_BENCH_STREAM": "1" if stream else "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
         "-u", str(users), "-r", str(users), "-t", f"{duration}s",
         "--host", base, "--only-summary", "--loglevel", "WARNING"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **pinned(LOAD_CPU),
    )  # fmt: skip
    try:
        m = window(counter, sim, psutil.Process(proc.pid), args)
    finally:
        proc.wait()
    m.setting = f"locust -u{users}"
    return m


def measure(
    pacing: Pacing, tmp: Path, args: argparse.Namespace
) -> list[tuple[str, str, Measure, Measure]]:
    """Both modes at one pacing: the simulator's best rate under wrk, then one Locust's."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    model = "gameday-sim-tiny"
    sim_proc = subprocess.Popen(
        [sys.executable, "-m", "gameday.sim", "serve", "--port", str(port),
         "--prefill-ms-per-token", "0", "--decode-ms-per-token", str(pacing.decode_ms),
         "--max-num-seqs", "32768", "--kv-cache-tokens", str(4 * 2**20),
         "--max-num-batched-tokens", str(2**20)],
        stderr=subprocess.DEVNULL, **pinned(SIM_CPU),
    )  # fmt: skip
    rows = []
    try:
        wait_ready(base)
        sim = psutil.Process(sim_proc.pid)
        counter = Counter(port)
        locustfile = tmp / "locustfile.py"
        locustfile.write_text(LOCUSTFILE % {"prompt": PROMPT, "model": model})
        for stream in (False, True):
            script = tmp / f"chat-{stream}.lua"
            script.write_text(
                WRK_SCRIPT % {"prompt": PROMPT, "model": model, "stream": str(stream).lower()}
            )
            best = max(
                (run_wrk(base, counter, sim, script, c, args) for c in pacing.wrk_connections),
                key=lambda m: m.rps,
            )
            locust = run_locust(base, counter, sim, locustfile, stream, pacing.locust_users, args)
            rows.append((pacing.name, "streaming" if stream else "non-streaming", best, locust))
    finally:
        sim_proc.terminate()
        sim_proc.wait(timeout=10)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=6.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs 2 CPUs: one for the simulator, one for the load generator")

    rows: list[tuple[str, str, Measure, Measure]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for pacing in PACINGS:
            rows += measure(pacing, Path(tmp), args)
    print(
        f"{'pacing':<22} {'mode':<14} {'sim rps':>8} {'(via)':<11} {'sim cpu':>7}  "
        f"{'locust rps':>10} {'(via)':<13} {'its cpu':>7} {'sim cpu':>7}  {'ratio':>5} "
        f"{'cpu ratio':>9}"
    )
    worst: dict[bool, float] = {True: float("inf"), False: float("inf")}
    notes: list[str] = []
    for pacing_name, mode, sim_m, loc in rows:
        ratio = sim_m.rps / loc.rps if loc.rps else float("inf")
        cpu_ratio = loc.client_cpu / loc.sim_cpu if loc.sim_cpu else float("inf")
        game_day = pacing_name.startswith("game day")
        worst[game_day] = min(worst[game_day], ratio)
        mark = "*" if sim_m.sim_cpu < SATURATED_CPU else " "
        print(f"{pacing_name:<22} {mode:<14} {sim_m.rps:>8.0f} {sim_m.setting:<11} "
              f"{sim_m.sim_cpu:>6.0%}{mark}  {loc.rps:>10.0f} {loc.setting:<13} "
              f"{loc.client_cpu:>7.0%} {loc.sim_cpu:>7.0%}  {ratio:>5.2f} "
              f"{cpu_ratio:>9.2f}")  # fmt: skip
        if mark == "*":
            if sim_m.core_busy >= 0.95:
                why = (
                    f"other processes took the rest of its core (busy {sim_m.core_busy:.0%}): "
                    "the machine was busy"
                )
            else:
                why = f"wrk did not saturate it (wrk used {sim_m.client_cpu:.0%} of its core)"
            notes.append(
                f"* {pacing_name}, {mode}: the simulator used {sim_m.sim_cpu:.0%} of its core; "
                f"{why}. Its capacity is higher than shown, the ratio a lower bound."
            )
    for note in notes:
        print(note)
    # The goal is about game days: their pacing is the one a run drives the simulator at.
    # The 1 ms row is a stress point, printed so a regression there is seen too.
    print(f"\nlowest ratio at game-day pacing: {worst[True]:.2f} (goal: >= 3)")
    print(f"lowest ratio at 1 ms/token (stress, not a goal): {worst[False]:.2f}")
    return 0 if worst[True] >= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
