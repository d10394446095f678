"""Remediation steps on real processes and sockets.

free-port against a real process listening on a real port. The target handed to the
step is a stand-in carrying the three fields the step reads (port, network, the
supervisor's server pid); no server is started for it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gameday.core.changes import ChangeSet
from gameday.core.events import EventBus
from gameday.core.journal import Journal
from gameday.core.processes import free_port, port_is_free
from gameday.injectors.base import FaultContext
from gameday.remedies.local.free_port import FreePortRemedy, port_holders
from gameday.runbooks.model import FreePort

LISTEN = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); print('ready', flush=True); time.sleep(300)"


@pytest.fixture
def holder() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LISTEN, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    yield process, port
    process.kill()
    process.wait()


def step(port: int, server_pid: int | None, tmp_path: Path) -> FreePortRemedy:
    target: Any = SimpleNamespace(
        port=port,
        network=None,
        cgroup=None,  # a server without a memory cgroup: only its pid is spared
        require_supervisor=lambda: SimpleNamespace(pid=server_pid),
    )
    journal = Journal(tmp_path / "journal.jsonl", "run")
    ctx = FaultContext(
        scenario="s",
        bus=EventBus(),
        changes=ChangeSet(journal, "s", "remedy/PortInUse"),
        stop=threading.Event(),
        artifacts=tmp_path,
    )
    return FreePortRemedy(FreePort(kind="free-port"), target, ctx)


def test_port_holders_finds_the_listener_as_lsof_does(
    holder: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = holder
    found = port_holders(port)
    assert list(found) == [process.pid]
    assert "socket.socket()" in found[process.pid]
    assert port_holders(free_port()) == {}


def test_free_port_kills_the_holder_and_the_port_is_free(
    holder: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    process, port = holder
    details = step(port, server_pid=None, tmp_path=tmp_path).apply()
    assert process.wait(timeout=5) == -9  # SIGKILL, as the runbook's kill -9
    assert details["port"] == str(port)
    assert f"killed pid {process.pid}" in details
    assert port_is_free(port)


def test_free_port_spares_the_server_itself(
    holder: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    process, port = holder
    details = step(port, server_pid=process.pid, tmp_path=tmp_path).apply()
    assert details == {"port": f"{port}: nothing but the server listens on it"}
    assert process.poll() is None
