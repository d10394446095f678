"""The kwok tier, once per test session: a real control plane, simulated kubelets.

Each test gets a namespace of its own; the tier is taken down at the end of the session
and the test fails if anything it started is still running. In CI (``CI=true``) a tier
that cannot be built or started fails the tests; elsewhere, without Go, they skip.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from kubernetes import client, config, watch

from gameday.core.journal import outstanding_undos
from gameday.core.processes import find_processes
from gameday.testenv import KwokEnv, KwokEnvConfig, KwokEnvInfo
from tests.conftest import IN_CI

T = TypeVar("T")


@pytest.fixture(scope="session")
def kwok(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KwokEnvInfo]:
    if shutil.which("go") is None and not os.environ.get("GAMEDAY_TESTENV_BIN"):
        if IN_CI:
            pytest.fail("the kwok tier needs Go to build its binaries; CI must provide it")
        pytest.skip("Go is not installed: the kwok tier cannot be built")
    state = tmp_path_factory.mktemp("kwok-state")
    previous = os.environ.get("GAMEDAY_KWOK_DIR")
    os.environ["GAMEDAY_KWOK_DIR"] = str(state)
    env = KwokEnv(KwokEnvConfig(name="tests", registry=("example.com/tests/app:1.0",)))
    started = time.monotonic()
    # one tier starts at a time: kwokctl picks its components' ports when it starts, and
    # two starting side by side (pytest-xdist workers) can pick the same; once a tier is
    # up its ports are bound and the next picks others
    with (tmp_path_factory.getbasetemp().parent / "kwok-up.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            info = env.up()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    print(f"kwok tier up in {time.monotonic() - started:.1f}s")
    try:
        yield info
    finally:
        env.down()
        if previous is None:
            os.environ.pop("GAMEDAY_KWOK_DIR", None)
        else:
            os.environ["GAMEDAY_KWOK_DIR"] = previous
    # nothing left: every undo record done, no process of the tier alive
    assert outstanding_undos(Path(info.journal)) == []
    assert find_processes(f"{info.run_id}.", prefix=True) == []
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if any(info.state_dir in part for part in p.info["cmdline"] or [])
    ]
    assert leftovers == [], leftovers
    workdir = Path(info.state_dir) / "kwok" / "clusters" / "tests"
    assert not workdir.exists(), f"{workdir} left behind"


@pytest.fixture(scope="session")
def api(kwok: KwokEnvInfo) -> client.ApiClient:
    api: client.ApiClient = config.new_client_from_config(config_file=kwok.kubeconfig)
    return api


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"t-{secrets.token_hex(3)}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def watch_until(
    list_fn: Callable[..., Any],
    predicate: Callable[[Any], T | None],
    *,
    timeout: float = 60.0,
    what: str = "condition",
    **kwargs: Any,
) -> T:
    """Watch objects (list, then resourceVersion-based watch) until ``predicate`` holds.

    ``list_fn`` is a client list method (e.g. ``CoreV1Api.list_namespaced_event``);
    ``predicate`` gets each object, the listed ones first, and returns a result or None."""
    listed = list_fn(**kwargs)
    for item in listed.items:
        if (found := predicate(item)) is not None:
            return found
    deadline = time.monotonic() + timeout
    version = listed.metadata.resource_version
    while (left := deadline - time.monotonic()) > 0:
        stream = watch.Watch().stream(
            list_fn, resource_version=version, timeout_seconds=max(1, int(left)), **kwargs
        )
        for event in stream:
            version = event["object"].metadata.resource_version
            if event["type"] != "DELETED" and (found := predicate(event["object"])) is not None:
                return found
    raise AssertionError(f"{what} did not happen within {timeout:g}s")


def poll_until(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """For what only answers queries (Prometheus' API): ask every 0.5 s until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := probe()) is not None:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")
