"""Secrets stay out of every artifact: a real game day with known secrets planted where a
team puts them (a server's ``--api-key`` and ``HF_TOKEN``, the harness's own environment,
a kubeconfig's token), then every file the run wrote and everything it printed is
searched for them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from gameday.core.redact import MASK
from tests.e2e.conftest import REPO, Run, gameday

pytestmark = pytest.mark.e2e

API_KEY = "sk-planted-4f1c9a0e7d"
HUB_TOKEN = "hf_planted_8b2d6e1a3c"
INHERITED_KEY = "sk-inherited-5e7a1b9c2f"
KUBE_TOKEN = "kube-planted-0c3f8e2a91"
PLANTED = (API_KEY, HUB_TOKEN, INHERITED_KEY, KUBE_TOKEN)


def leaks(run: Run, report_dir: Path) -> list[str]:
    """Where any planted secret appears: files under ``report_dir``, stdout, stderr."""
    found = [
        f"{path.relative_to(report_dir)}: {secret}"
        for path in sorted(report_dir.rglob("*"))
        if path.is_file()
        for secret in PLANTED
        if secret.encode() in path.read_bytes()
    ]
    found += [
        f"{name}: {s}"
        for name, text in (("stdout", run.stdout), ("stderr", run.stderr))
        for s in PLANTED
        if s in text
    ]
    return found


def test_planted_secrets_appear_in_no_artifact_of_a_local_game_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the harness's environment, which the server inherits
    monkeypatch.setenv("OPENAI_API_KEY", INHERITED_KEY)
    # a wrapper that logs what a careless start script logs, then serves with a key
    wrapper = 'echo "hub token $HF_TOKEN, client key $OPENAI_API_KEY"; exec "$@"'
    scenario = {
        "apiVersion": "gameday/v1alpha1",
        "kind": "Scenario",
        "metadata": {"name": "secrets", "description": "A key-protected server, killed once."},
        "target": {
            "local": {
                "server": {
                    "engine": "command",
                    "command": [
                        "sh",
                        "-c",
                        wrapper,
                        "sh",
                        sys.executable,
                        "-m",
                        "gameday",
                        "sim",
                        "serve",
                        "--host",
                        "{host}",
                        "--port",
                        "{port}",
                    ],
                    "args": ["--api-key", API_KEY],
                    "env": {"HF_TOKEN": HUB_TOKEN},
                    "restart": "always",
                    "backoff": {"initial": "2s", "max": "2s"},
                }
            }
        },
        "load": {"users": 4, "spawn_rate": 4},
        # a load that succeeds proves the load sent the key (the server refuses without it)
        "steady_state": [{"load": {"error_ratio": {"max": 0.01}, "window": "3s"}}],
        "faults": [{"name": "kill", "type": "process-kill", "at": "1s", "signal": "SIGKILL"}],
        "expect": [{"load": {"error_ratio": {"min": 0.5}, "window": "2s", "within": "20s"}}],
        "recover": [{"load": {"error_ratio": {"max": 0.01}, "window": "3s", "within": "60s"}}],
    }
    path = tmp_path / "secrets.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    report_dir = tmp_path / "reports"

    run = gameday("run", str(path), "--no-live", report_dir=report_dir)

    assert run.code == 0, run.stderr[-4000:]
    assert run.run_dir is not None
    written = {p.name for p in run.run_dir.rglob("*") if p.is_file()}
    for artifact in (
        "journal.jsonl",
        "report.json",
        "report.html",
        "junit.xml",
        "summary.md",
        "server.log",
        "locust.log",
    ):
        assert artifact in written, f"{artifact} was not written: {sorted(written)}"
    assert leaks(run, report_dir) == []
    # masked, not dropped: the server's log line and its command line are still there
    server_log = next(run.run_dir.rglob("server.log")).read_text()
    assert f"hub token {MASK}, client key {MASK}" in server_log
    journal = (run.run_dir / "journal.jsonl").read_text()
    assert f'"--api-key","{MASK}"' in journal
    assert '"HF_TOKEN":"' + MASK in journal  # the scenario's spec, as ScenarioStarted holds it


def test_a_kubeconfig_token_appears_nowhere_when_its_cluster_is_unreachable(
    tmp_path: Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "planted",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": KUBE_TOKEN}}],
                "contexts": [{"name": "planted", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    report_dir = tmp_path / "reports"
    run = gameday(
        "run",
        str(REPO / "scenarios" / "kubernetes" / "oom-kill.yaml"),
        "--context",
        "planted",
        "--no-live",
        report_dir=report_dir,
        env={"KUBECONFIG": str(kubeconfig)},
    )
    assert run.code == 3, (run.code, run.stderr[-3000:])
    assert "127.0.0.1:9" in run.stderr + run.stdout  # it did try that cluster
    assert leaks(run, report_dir) == []
