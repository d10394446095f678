"""The ``local`` target: the server as a supervised process, monitored by a private stack."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gameday.core.cgroup import MemoryCgroup, RemoveCgroup, memory_cgroup_support
from gameday.core.changes import ChangeSet
from gameday.core.errors import ComponentUnreachable, InjectionError, UsageError
from gameday.core.events import ComponentReady, Note, RulesLoaded
from gameday.core.processes import (
    free_port,
    port_is_free,
    private_shm,
    private_shm_support,
    spawn,
)
from gameday.core.undo import RemoveTree
from gameday.observe.nvml import DcgmCollector, nvml_device_count
from gameday.scenario.model import Requirement, TargetParams
from gameday.targets.base import Endpoints, RuleOptions, Target, TargetContext, targets
from gameday.targets.local.engines import Engine, EngineLaunch, engines
from gameday.targets.local.engines.vllm import VllmEngine
from gameday.targets.local.exporter import ContainerStateCollector, MetricsExporter
from gameday.targets.local.monitoring import MonitoringStack, rule_problems
from gameday.targets.local.network import ServerNetwork
from gameday.targets.local.spec import LocalTargetSpec
from gameday.targets.local.supervisor import BackoffPolicy, ContainerState, Supervisor

__all__ = ["LocalTarget", "gameday_command", "server_api_key"]

NAMESPACE = "gameday-local"
SERVER = "server"


def gameday_command() -> list[str]:
    """This installation's own ``gameday`` command, whatever PATH says."""
    return [sys.executable, "-m", "gameday"]


def server_api_key(command: list[str], env: dict[str, str]) -> str | None:
    """The key vLLM (and the simulator) asks for: ``--api-key K`` (or ``=K``), else
    ``VLLM_API_KEY`` of the server's environment (which inherits the harness's)."""
    for index, arg in enumerate(command):
        if arg == "--api-key" and index + 1 < len(command):
            return command[index + 1]
        if arg.startswith("--api-key="):
            return arg.removeprefix("--api-key=")
    return env.get("VLLM_API_KEY") or os.environ.get("VLLM_API_KEY") or None


@targets.register("local")
class LocalTarget(Target):
    kind = "local"
    Params = LocalTargetSpec

    @classmethod
    def requirements(cls, params: TargetParams) -> frozenset[Requirement]:
        assert isinstance(params, LocalTargetSpec)
        if params.network is None:
            return cls.requires
        return cls.requires | {Requirement.ROOT, Requirement.NETNS, Requirement.DNSMASQ}

    @classmethod
    def preflight(cls, params: TargetParams, kube_context: str | None) -> None:
        """An engine that is not installed here ends the run before anything starts (exit 3,
        with the command that installs it)."""
        del kube_context
        assert isinstance(params, LocalTargetSpec)
        if params.server.engine_name == VllmEngine.name:
            VllmEngine.require()

    @classmethod
    def check_files(
        cls, params: TargetParams, scenario_dir: Path
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Every rule file the scenario names must load, and its time compress; a model
        directory it names must be one: a directory with a config.json (what both engines
        read first)."""
        assert isinstance(params, LocalTargetSpec)
        problems: list[tuple[tuple[str | int, ...], str]] = [
            (("prometheus", "rules", index), message)
            for index, message in rule_problems(params.prometheus, scenario_dir)
        ]
        return problems + cls._model_problems(params, scenario_dir)

    @staticmethod
    def _model_problems(
        params: LocalTargetSpec, scenario_dir: Path
    ) -> list[tuple[tuple[str | int, ...], str]]:
        model = params.server.model
        if model is None or model.path is None:
            return []
        path = Path(model.path)
        path = path if path.is_absolute() else scenario_dir / path
        where = ("server", "model", "path")
        if not path.is_dir():
            return [
                (
                    where,
                    f"{path} is not a directory (a model directory holds config.json "
                    "and safetensors weights; gameday model make-tiny DIR writes one)",
                )
            ]
        if not (path / "config.json").is_file():
            return [(where, f"{path} is not a model directory: it has no config.json")]
        return []

    @classmethod
    def with_engine(cls, params: TargetParams, engine: str) -> TargetParams:
        assert isinstance(params, LocalTargetSpec)
        server = params.server
        if server.engine == engine:
            return params
        if server.engine_name == "command":
            raise UsageError(
                f"its server runs its own command (engine: command); --engine {engine} "
                "swaps only sim and vllm"
            )
        update = {"engine": engine}
        return params.model_copy(update={"server": server.model_copy(update=update)})

    def __init__(self, params: TargetParams, ctx: TargetContext) -> None:
        assert isinstance(params, LocalTargetSpec)
        self.spec = params
        self.ctx = ctx
        self.changes = ChangeSet(ctx.journal, ctx.scenario, "target/local")
        self.scratch = Path(tempfile.gettempdir()) / f"gameday-{ctx.run_id}-{ctx.scenario}"
        self.port = params.server.port or 0
        self.model_dir: Path | None = None
        self.network: ServerNetwork | None = None
        self.host = "127.0.0.1"
        self.cgroup: MemoryCgroup | None = None
        self.configured_memory_limit: str | None = None
        """The server's memory limit as the scenario set it (before any fault)."""
        self.engine: type[Engine] = engines.get(params.server.engine_name)
        self.supervisor: Supervisor | None = None
        self._startup_seconds = 0.0
        self.monitoring: MonitoringStack | None = None
        self.exporter = MetricsExporter()
        self.gpu_exporter: MetricsExporter | None = None
        self._endpoints: Endpoints | None = None

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise ComponentUnreachable("the local target is not up")
        return self._endpoints

    @property
    def startup_seconds(self) -> float:
        return self._startup_seconds

    @property
    def server_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pod(self) -> str:
        return f"{self.ctx.scenario}-{SERVER}"

    @classmethod
    def with_rules(cls, params: TargetParams, options: RuleOptions) -> TargetParams:
        assert isinstance(params, LocalTargetSpec)
        prometheus = params.prometheus
        rules = [r for r in prometheus.rules if options.bundled or r != "bundled"]
        rules += [str(path.resolve()) for path in options.files]
        if not rules:
            raise UsageError("--no-bundled-rules leaves no rules at all: give --rules FILE")
        update: dict[str, object] = {"rules": rules}
        if options.time_compression is not None:
            update["time_compression"] = options.time_compression
        return params.model_copy(update={"prometheus": prometheus.model_copy(update=update)})

    def simulated(self) -> list[str]:
        notes = [
            "container state series (restarts, last terminated reason, CrashLoopBackOff) come "
            "from the harness's process supervisor in kube-state-metrics format, not a kubelet",
        ]
        if self.gpu_exporter is not None:
            notes.append(
                "GPU memory and utilization series are NVML readings exported by the harness "
                "under dcgm-exporter's names (DCGM_FI_DEV_*), not by dcgm-exporter"
            )
        if self.monitoring and self.monitoring.rules and self.monitoring.rules.factor != 1:
            notes.append(
                f"alert rule time compressed x{self.monitoring.rules.factor:g} "
                "(for: and range windows divided; see config/rules)"
            )
        return notes

    def require_supervisor(self) -> Supervisor:
        if self.supervisor is None:
            raise InjectionError("the local target's server is not running")
        return self.supervisor

    def require_cgroup(self) -> MemoryCgroup:
        if self.cgroup is None:
            reason = memory_cgroup_support() or "the server was started without one"
            raise InjectionError(f"the server has no memory cgroup: {reason}")
        return self.cgroup

    def check_serving(self, timeout: float) -> str:
        supervisor = self.require_supervisor()
        started = time.monotonic()
        supervisor.wait_ready(timeout, ignore_stop=True)
        took = time.monotonic() - started
        return f"the server is serving ({supervisor.health_url} answered 200 after {took:.1f}s)"

    # -- up/down -------------------------------------------------------------------

    def up(self) -> None:
        ctx, spec = self.ctx, self.spec
        ctx.artifacts.mkdir(parents=True, exist_ok=True)
        self.changes.record(RemoveTree(path=str(self.scratch)))
        self.scratch.mkdir(parents=True, exist_ok=True)

        if spec.server.port is not None and not port_is_free(spec.server.port):
            raise ComponentUnreachable(
                f"port {spec.server.port} is already in use on 127.0.0.1; "
                "free it or leave target.local.server.port unset for a free port"
            )
        self.port = spec.server.port or free_port()
        prometheus_port, alertmanager_port, exporter_port = free_port(), free_port(), free_port()

        problem = memory_cgroup_support()
        if problem is None:
            path = f"gameday-{ctx.run_id}-{ctx.scenario}"
            cgroup_path = MemoryCgroup.path_for(path)
            self.changes.record(RemoveCgroup(path=str(cgroup_path)))
            self.cgroup = MemoryCgroup.create(path)
            if spec.server.memory_limit is not None:
                self.cgroup.set_limit(spec.server.memory_limit)
            self.configured_memory_limit = self.cgroup.limit_text()
        else:
            ctx.bus.emit(
                Note(
                    scenario=ctx.scenario,
                    level="warning",
                    message=f"server runs without a memory cgroup ({problem}); "
                    "memory faults are unavailable",
                )
            )

        if spec.server.model is not None or self.engine.needs_model:
            self.model_dir = self._model_dir()
        if spec.network is not None:
            self.network = ServerNetwork(spec.network, self.changes, self.scratch, ctx.artifacts)
            self.network.up()
            self.host = self.network.server_ip
            ctx.bus.emit(
                ComponentReady(
                    scenario=ctx.scenario,
                    component="dnsmasq",
                    url=f"dns://{self.network.host_ip}",
                    pid=self.network.dnsmasq.pid if self.network.dnsmasq else None,
                    detail=f"resolver of network namespace {self.network.namespace}",
                )
            )

        self.exporter.add(
            ContainerStateCollector(
                NAMESPACE,
                self.pod,
                SERVER,
                lambda: self.supervisor.state if self.supervisor else ContainerState(),
            )
        )
        self.exporter.start(exporter_port)
        scrape_jobs = {
            "inference": f"{self.host}:{self.port}",
            "kube-state-metrics": f"127.0.0.1:{exporter_port}",
        }
        if nvml_device_count() > 0:
            self.gpu_exporter = MetricsExporter()
            self.gpu_exporter.add(DcgmCollector())
            gpu_port = free_port()
            self.gpu_exporter.start(gpu_port)
            scrape_jobs["dcgm-exporter"] = f"127.0.0.1:{gpu_port}"

        self.monitoring = MonitoringStack(
            ctx, self.changes, self.scratch, spec.prometheus, spec.alertmanager
        )
        self.monitoring.start(
            prometheus_port=prometheus_port,
            alertmanager_port=alertmanager_port,
            scrape_jobs=scrape_jobs,
            labels={"namespace": NAMESPACE, "pod": self.pod},
        )
        rules = self.monitoring.rules
        if rules is not None:
            ctx.bus.emit(
                RulesLoaded(
                    scenario=ctx.scenario,
                    sources=tuple(str(path) for path in rules.sources),
                    factor=rules.factor,
                    alerting_rules=self.monitoring.alerting_rules,
                    rewrites=tuple(rules.changes),
                )
            )
        ctx.bus.emit(
            ComponentReady(
                scenario=ctx.scenario,
                component="alertmanager",
                url=self.monitoring.alertmanager_url,
                pid=self.monitoring.processes[0].pid,
            )
        )
        ctx.bus.emit(
            ComponentReady(
                scenario=ctx.scenario,
                component="prometheus",
                url=self.monitoring.prometheus_url,
                pid=self.monitoring.processes[1].pid,
                detail=(
                    f"{self.monitoring.alerting_rules} alerting rules from {len(rules.files)} "
                    f"file(s), time compression x{rules.factor:g}"
                    if rules
                    else ""
                ),
            )
        )

        server = spec.server
        launch = EngineLaunch(self.host, self.port, self.model_dir, self.scratch)
        (self.scratch / "tmp").mkdir(exist_ok=True)
        self.supervisor = Supervisor(
            SERVER,
            self._command(launch),
            ctx=ctx,
            changes=self.changes,
            restart=server.restart,
            backoff=BackoffPolicy(
                server.backoff.initial, server.backoff.max, server.backoff.reset_after
            ),
            env={**self.engine.env(server, launch), **server.env},
            cgroup=self.cgroup,
            health_url=f"{self.server_url}{server.health_path}",
        )
        started = time.monotonic()
        self.supervisor.start()
        self.supervisor.wait_ready(self.ready_timeout)
        self._startup_seconds = time.monotonic() - started
        ctx.bus.emit(
            ComponentReady(
                scenario=ctx.scenario,
                component=SERVER,
                url=self.server_url,
                pid=self.supervisor.pid,
                detail=f"engine {self.engine.name}, ready in {self._startup_seconds:.1f}s: "
                + " ".join(self.supervisor.command),
            )
        )
        self.monitoring.wait_scraped("inference", 30)
        self._endpoints = Endpoints(
            server=self.server_url,
            prometheus=self.monitoring.prometheus_url,
            alertmanager=self.monitoring.alertmanager_url,
            extra={"port": str(self.port)},
            api_key=server_api_key(self.supervisor.command, self.supervisor.env),
        )

    def down(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.monitoring is not None:
            self.monitoring.stop()
        self.exporter.stop()
        if self.gpu_exporter is not None:
            self.gpu_exporter.stop()
        self.changes.revert_all()

    # -- helpers -------------------------------------------------------------------

    @property
    def ready_timeout(self) -> float:
        """The server's start-up budget: the scenario's, else its engine's."""
        timeout = self.spec.server.ready_timeout
        return timeout if timeout is not None else self.engine.ready_timeout

    def _command(self, launch: EngineLaunch) -> list[str]:
        command = self.engine.command(self.spec.server, launch)
        if command[0] == "gameday":
            command = gameday_command() + command[1:]
        if private_shm_support() is None:
            # a /dev/shm of its own, as a container has: gone with the server's last process
            command = private_shm(command, self.spec.server.shm_size)
        return self.network.wrap(command) if self.network else command

    def _model_dir(self) -> Path:
        """The scenario's model directory, or a tiny one generated for the run (also when
        the scenario has no model block but its engine needs a model)."""
        from gameday.targets.local.spec import ModelSpec

        model = self.spec.server.model or ModelSpec()
        if model.path is not None:
            path = Path(model.path)
            return path if path.is_absolute() else (self.ctx.scenario_dir / path).resolve()
        path = self.scratch / "model"
        # a tiny Llama that the simulator and vLLM both load (1.7 MB, max_model_len 512);
        # spawned journaled: killed with the harness, it must not write on after cleanup
        builder = spawn(
            [
                *gameday_command(),
                "model",
                "make-tiny",
                str(path),
                "--shards",
                str(model.shards),
                "--max-model-len",
                str(model.max_model_len),
                "--name",
                self.ctx.scenario,
            ],
            name="make-tiny",
            changes=self.changes,
        )
        try:
            stdout, stderr = builder.popen.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            builder.popen.kill()
            stdout, stderr = builder.popen.communicate()
        if builder.popen.returncode != 0:
            said = stderr.decode(errors="replace").strip() or stdout.decode(errors="replace")
            raise ComponentUnreachable(f"could not create a model directory: {said}")
        return path
