"""``gameday testenv``: bring the kwok tier up and down (``make testenv-up``/``-down``)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    help=(
        "The kwok tier: etcd, kube-apiserver, controller-manager and scheduler as local "
        "processes, kubelets simulated by KWOK stages, CPU and GPU nodes, CoreDNS, "
        "kube-state-metrics, Prometheus and Alertmanager. Binaries are built from the Go "
        "module proxy on first use (testenv/build.sh) and cached."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

Name = Annotated[str, typer.Option("--name", help="Which tier (several can run side by side).")]


@app.command()
def up(
    name: Name = "gameday",
    cpu_nodes: Annotated[int, typer.Option(min=0, help="CPU nodes.")] = 2,
    gpu_nodes: Annotated[int, typer.Option(min=0, help="GPU nodes (nvidia.com/gpu).")] = 2,
    gpus_per_node: Annotated[int, typer.Option(min=1)] = 8,
    monitoring: Annotated[
        bool, typer.Option(help="kube-state-metrics, Prometheus with the Kubernetes rules.")
    ] = True,
) -> None:
    """Start the tier; the last line printed is `export KUBECONFIG=<path>`."""
    from gameday.cli.common import err, guarded, out
    from gameday.testenv.cluster import KwokEnv, KwokEnvConfig

    env = KwokEnv(
        KwokEnvConfig(
            name=name,
            cpu_nodes=cpu_nodes,
            gpu_nodes=gpu_nodes,
            gpus_per_node=gpus_per_node,
            monitoring=monitoring,
        )
    )
    started = time.monotonic()
    info = guarded(env.up)
    err.print(
        f"kwok tier {name!r} up in {time.monotonic() - started:.1f}s: {len(info.nodes)} nodes"
    )
    for label, url in (
        ("prometheus", info.prometheus),
        ("alertmanager", info.alertmanager),
        ("kube-state-metrics", info.kube_state_metrics),
    ):
        if url:
            err.print(f"  {label}: {url}")
    err.print(f"  state: {info.state_dir} (down: gameday testenv down --name {name})")
    out.print(f"export KUBECONFIG={info.kubeconfig}")


@app.command()
def down(name: Name = "gameday") -> None:
    """Stop every process of the tier and remove its files."""
    from gameday.cli.common import guarded, out
    from gameday.testenv.cluster import KwokEnv, KwokEnvConfig

    done = guarded(KwokEnv(KwokEnvConfig(name=name)).down)
    for line in done:
        out.print(f"  {line}")
    out.print(f"kwok tier {name!r} is down" if done else f"kwok tier {name!r} was not up")


@app.command()
def status(name: Name = "gameday") -> None:
    """Say whether the tier is up, and where to reach it."""
    from gameday.cli.common import guarded, out
    from gameday.testenv.cluster import KwokEnv, KwokEnvConfig

    env = KwokEnv(KwokEnvConfig(name=name))
    if not env.is_up():
        out.print(f"kwok tier {name!r} is not up")
        raise typer.Exit(1)
    out.print_json(data=guarded(env.info).__dict__)
