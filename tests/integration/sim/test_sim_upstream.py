"""The upstream dependency breaks for real: its name stops resolving, then comes back.

The simulator runs in its own mount namespace with /etc/hosts bind-mounted from a file
the test edits, so ``getaddrinfo`` itself starts failing; needs root and unshare(1).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.integration.sim.support import StartSim, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.root]

NAME = "upstream.gameday.test"


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"
)
def test_upstream_that_stops_resolving_makes_the_engine_unhealthy(
    start_sim: StartSim, tmp_path: Path
) -> None:
    hosts = tmp_path / "hosts"
    original = Path("/etc/hosts").read_text()
    hosts.write_text(f"{original}\n127.0.0.1 {NAME}\n")
    launcher = tmp_path / "in-namespace.sh"
    # exec: the simulator keeps the pid the fixture signals.
    launcher.write_text(f'mount --bind {hosts} /etc/hosts && exec "$@"\n')
    sim = start_sim(
        "--upstream", f"http://{NAME}:8080", "--upstream-check-interval", "100ms",
        prefix=("unshare", "--mount", "sh", str(launcher)),
    )  # fmt: skip
    assert sim.chat(max_tokens=2).status_code == 200

    # Rewritten in place: the bind mount follows the inode.
    with hosts.open("w") as f:
        f.write(original)
    wait_until(lambda: sim.health() == 503, 10, "/health 503 once the name fails")
    r = sim.chat(max_tokens=2)
    assert r.status_code == 503
    message = r.json()["error"]["message"]
    assert message.startswith(
        f"Upstream dependency {NAME}:8080 (http://{NAME}:8080) is unavailable: socket.gaierror: "
    )
    assert "socket.gaierror: [Errno -" in sim.log()
    assert sim.value("gameday_sim_upstream_up") == 0

    with hosts.open("w") as f:
        f.write(f"{original}\n127.0.0.1 {NAME}\n")
    wait_until(lambda: sim.health() == 200, 10, "/health 200 once the name resolves again")
    assert sim.chat(max_tokens=2).status_code == 200
    assert "resolves again; the engine is healthy" in sim.log()
