"""The typed runbook catalog: every documented failure, how to recognise it, how to fix it.

One :class:`Entry` per failure the runbooks in ``../shared/seeds/`` describe, under a
runbook code (``NETWORK001``, ``KVCacheExhaustion``). An entry says

- where it is documented (:class:`SeedRef`: the seed file and the exact heading),
- how it shows (:data:`Signature`: typed observations, one ``kind`` each — a Kubernetes
  event, a container state, a scheduler message, a server log line, a process exit,
  what the load sees, an alert, a metric condition),
- how it is fixed (:data:`Action`: typed remediation steps, one ``kind`` each; ``manual``
  where the runbook's step is a human one),
- how long that may take (:class:`Budget`, the runbook's own time box where it has one),
- and on which tier a game day can make it happen for real (:class:`Reproducible`).

Like the scenario model this layer is pure: pydantic and nothing else. Regular
expressions are compiled when the catalog is validated, so a catalog with a broken
pattern never loads.
"""

from __future__ import annotations

import difflib
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from gameday.core.errors import UsageError
from gameday.scenario.model import RUNBOOK_CODE_PATTERN
from gameday.scenario.units import ByteSize, Duration, Regex

__all__ = [
    "CATALOG_KIND",
    "DEFAULT_RECOVER",
    "SEED_FILE_PATTERN",
    "Action",
    "Budget",
    "BudgetSource",
    "Catalog",
    "Category",
    "Entry",
    "Regex",
    "Reproducible",
    "SeedRef",
    "Signature",
    "Tier",
]

CATALOG_KIND = "RunbookCatalog"
SEED_FILE_PATTERN = r"^[0-9]{3}_[0-9a-f]{16}\.txt$"
DEFAULT_RECOVER = 15 * 60.0
"""Seconds to recover when the runbook gives no time box: the ModelInferenceFailure
runbook's first escalation level ("Level 1: On-Call Engineer (0-15 minutes)")."""


Code = Annotated[str, Field(pattern=RUNBOOK_CODE_PATTERN)]


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, populate_by_name=True
    )


# --- where an entry is documented ---------------------------------------------------


class SeedRef(_Strict):
    """A section of a seed runbook, named by its heading exactly as the file writes it."""

    file: str = Field(pattern=SEED_FILE_PATTERN)
    """The seed file's name, e.g. ``000_383c4dca91e56b28.txt``."""
    section: str = Field(min_length=1)
    """The heading text without its ``#`` marks, e.g. ``MEMORY001: OOM Killed``."""
    within: str | None = None
    """An enclosing heading, where ``section`` alone occurs more than once in the file."""


class Category(StrEnum):
    DEPLOYMENT = "deployment"
    RUNTIME = "runtime"
    NETWORK = "network"
    GPU = "gpu"
    MEMORY = "memory"
    STORAGE = "storage"
    AUTH = "auth"
    MODEL = "model"
    PERFORMANCE = "performance"
    WORKLOAD = "workload"


# --- signatures: how a failure shows ------------------------------------------------


class _Signature(_Strict):
    specific: bool = True
    """False for a symptom many failures share (``HTTP 503``, CrashLoopBackOff): it
    supports a diagnosis but does not make one alone."""
    examples: tuple[str, ...] = ()
    """Observed texts the signature's pattern must match (checked by the tests)."""

    def patterns(self) -> tuple[str, ...]:
        """The regular expressions of this signature, to match its examples against."""
        return ()


class KubernetesEvent(_Signature):
    """A Kubernetes event: ``reason`` exactly, ``message`` as a regular expression."""

    kind: Literal["k8s-event"]
    reason: str = Field(min_length=1)
    message: Regex | None = None
    type: Literal["Normal", "Warning"] = "Warning"
    involved_kind: str | None = None
    """The kind of the involved object (Pod, PersistentVolumeClaim, ReplicaSet...)."""

    def patterns(self) -> tuple[str, ...]:
        return (self.message,) if self.message else ()


class ContainerWaiting(_Signature):
    """A container waiting with ``reason`` (``state.waiting``), and optionally a message."""

    kind: Literal["container-waiting"]
    reason: str = Field(min_length=1)
    message: Regex | None = None

    def patterns(self) -> tuple[str, ...]:
        return (self.message,) if self.message else ()


class ContainerTerminated(_Signature):
    """A container that terminated (``state`` or ``lastState.terminated``)."""

    kind: Literal["container-terminated"]
    reason: str = Field(min_length=1)
    exit_code: int | None = None
    message: Regex | None = None

    def patterns(self) -> tuple[str, ...]:
        return (self.message,) if self.message else ()


class SchedulerMessage(_Signature):
    """The scheduler's reason for not placing a pod (FailedScheduling, PodScheduled=False)."""

    kind: Literal["scheduler"]
    message: Regex

    def patterns(self) -> tuple[str, ...]:
        return (self.message,)


class LogLine(_Signature):
    """A line of the server's own output (stdout or stderr, the container's log)."""

    kind: Literal["log"]
    pattern: Regex

    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,)


class CommandOutput(_Signature):
    """What a client command prints (``curl``, ``nslookup``, ``kubectl``, ``docker``)."""

    kind: Literal["command-output"]
    command: str = Field(min_length=1)
    pattern: Regex

    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,)


class ApiError(_Signature):
    """An error the Kubernetes API server answers a request with."""

    kind: Literal["api-error"]
    status: int | None = Field(default=None, ge=400, le=599)
    message: Regex

    def patterns(self) -> tuple[str, ...]:
        return (self.message,)


class ProcessExit(_Signature):
    """The server process exits (local tier: the supervisor's record of it)."""

    kind: Literal["process-exit"]
    code: int | None = None
    reason: str | None = None
    """``OOMKilled``, ``Error``, ... as the supervisor and the kubelet name exits."""
    signal: str | None = Field(default=None, pattern=r"^SIG[A-Z0-9]+$")

    @model_validator(mode="after")
    def _something(self) -> ProcessExit:
        if self.code is None and self.reason is None and self.signal is None:
            raise ValueError("a process-exit signature needs code, reason or signal")
        return self


class LoadError(_Signature):
    """A failure the load sees, by the load's name for it: ``HTTP 503``, ``timeout``,
    ``ConnectionRefusedError``, ``RemoteDisconnected``, ``NameResolutionError``."""

    kind: Literal["load-error"]
    pattern: Regex

    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,)


class AlertFiring(_Signature):
    """A Prometheus alert (by name) in ``state``."""

    kind: Literal["alert"]
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    state: Literal["firing", "pending"] = "firing"


class MetricCondition(_Signature):
    """A PromQL condition: the failure holds while ``expr`` returns a series."""

    kind: Literal["metric"]
    expr: str = Field(min_length=1)
    for_: Duration | None = Field(default=None, alias="for")
    """How long the condition must hold before it counts."""


Signature = Annotated[
    Union[  # noqa: UP007 - a discriminated union reads best spelled out
        KubernetesEvent,
        ContainerWaiting,
        ContainerTerminated,
        SchedulerMessage,
        LogLine,
        CommandOutput,
        ApiError,
        ProcessExit,
        LoadError,
        AlertFiring,
        MetricCondition,
    ],
    Field(discriminator="kind"),
]


# --- actions: how a failure is fixed -------------------------------------------------


class _Action(_Strict):
    when: str | None = None
    """The runbook's condition for this step, in its words ("if persistent")."""
    note: str | None = None


class _Workload(_Action):
    deployment: str | None = None
    """The workload to act on; default: the scenario's serving workload."""
    namespace: str | None = None


class RolloutUndo(_Workload):
    """Roll the workload back to its previous revision (``kubectl rollout undo``)."""

    kind: Literal["rollout-undo"]
    to_revision: int | None = Field(default=None, ge=1)


class RestartDeployment(_Workload):
    """Restart a workload's pods (``kubectl rollout restart``); locally, the server."""

    kind: Literal["restart-deployment"]
    workload_kind: Literal["deployment", "daemonset", "statefulset"] = "deployment"


class DeletePods(_Action):
    """Delete pods so their controller recreates them (``kubectl delete pod``)."""

    kind: Literal["delete-pods"]
    selector: str | None = None
    namespace: str | None = None
    only_restarted: bool = False
    """Only pods whose containers have restarted."""


class Scale(_Workload):
    """Set (``replicas``) or change (``delta``) a workload's replica count."""

    kind: Literal["scale"]
    replicas: int | None = Field(default=None, ge=0)
    delta: int | None = None

    @model_validator(mode="after")
    def _one(self) -> Scale:
        if (self.replicas is None) == (self.delta is None):
            raise ValueError("scale needs exactly one of replicas and delta")
        return self


class SetImage(_Action):
    """Point a container at an image that can be pulled and runs."""

    kind: Literal["set-image"]
    container: str | None = None
    image: str | None = None
    """Default: the last image the workload ran with."""


class AddPullSecret(_Action):
    """Create (or recreate) a docker-registry secret and add it to ``imagePullSecrets``."""

    kind: Literal["add-pull-secret"]
    secret: str = "regcred"  # noqa: S105 - the name of a Secret, not its content
    server: str | None = None


class SetStorageClass(_Action):
    """Recreate a claim with a StorageClass that exists and can provision."""

    kind: Literal["set-storage-class"]
    claim: str | None = None
    storage_class: str | None = None
    """Default: the cluster's default StorageClass."""


class RaiseMemoryLimit(_Action):
    """Raise a container's memory limit (locally: the server's cgroup) above its working set."""

    kind: Literal["raise-memory-limit"]
    container: str | None = None
    to: ByteSize | None = None
    factor: float | None = Field(default=None, gt=1.0)
    """Multiply the working set by this much (1.5: "50% buffer")."""

    @model_validator(mode="after")
    def _one(self) -> RaiseMemoryLimit:
        if self.to is None and self.factor is None:
            raise ValueError("raise-memory-limit needs to or factor")
        return self


class SetResources(_Action):
    """Set a container's resource requests and limits (``nvidia.com/gpu: "1"``)."""

    kind: Literal["set-resources"]
    container: str | None = None
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class AddToleration(_Action):
    """Let the pod onto nodes with a taint (GPU nodes are often tainted)."""

    kind: Literal["add-toleration"]
    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class RaiseQuota(_Action):
    """Raise a ResourceQuota's hard limit for ``resource``."""

    kind: Literal["raise-quota"]
    quota: str | None = None
    resource: str
    to: str | None = None


class GrantPermission(_Action):
    """Give a service account ``verbs`` on ``resources`` (a Role and a RoleBinding); with
    neither named, give back the permission the API server refused."""

    kind: Literal["grant-permission"]
    service_account: str | None = None
    api_groups: tuple[str, ...] = ("",)
    resources: tuple[str, ...] = ()
    """Empty: the resource of the refused request."""
    verbs: tuple[str, ...] = ()
    """Empty: the verb of the refused request."""

    @model_validator(mode="after")
    def _both_or_neither(self) -> GrantPermission:
        if bool(self.resources) != bool(self.verbs):
            raise ValueError("grant-permission names resources and verbs, or neither")
        return self


class ApplyManifest(_Action):
    """Apply a manifest (``kubectl apply -f URL``), e.g. updated CRDs."""

    kind: Literal["apply-manifest"]
    url: str = Field(min_length=1)


class PatchConfig(_Action):
    """Merge ``data`` into a ConfigMap the server reads its settings from."""

    kind: Literal["patch-config"]
    configmap: str
    data: dict[str, str] = Field(min_length=1)


class SetEnv(_Action):
    """Set an environment variable of the server, from a value or a secret."""

    kind: Literal["set-env"]
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = None
    from_secret: str | None = None

    @model_validator(mode="after")
    def _one(self) -> SetEnv:
        if (self.value is None) == (self.from_secret is None):
            raise ValueError("set-env needs exactly one of value and from_secret")
        return self


class SetProbe(_Action):
    """Give a probe more time (``initialDelaySeconds``, ``timeoutSeconds``, ``periodSeconds``)."""

    kind: Literal["set-probe"]
    probe: Literal["readiness", "liveness", "startup"] = "readiness"
    initial_delay: Duration | None = None
    timeout: Duration | None = None
    period: Duration | None = None


class MountShm(_Action):
    """Mount a memory-backed ``/dev/shm`` of ``size`` (an emptyDir with medium Memory)."""

    kind: Literal["mount-shm"]
    size: ByteSize


class FreePort(_Action):
    """Stop whatever else holds the server's port (``lsof -i :PORT``, ``kill``)."""

    kind: Literal["free-port"]
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default: the server's port."""


class StopHog(_Action):
    """Stop another process holding a resource the server needs."""

    kind: Literal["stop-hog"]
    resource: Literal["gpu-memory", "memory", "cpu"]


class FixDns(_Action):
    """Make the server's resolver answer its names again."""

    kind: Literal["fix-dns"]
    names: tuple[str, ...] = ()
    """Default: every name the server resolves."""


class RestoreModel(_Action):
    """Put the model's weight files back (re-download or restore) and verify checksums."""

    kind: Literal["restore-model"]
    file: str | None = None
    """Default: every weight file of the model (the ones its safetensors index names)."""


class SetEngineFlag(_Action):
    """Start the serving engine with a flag (``--enforce-eager``, ``--max-num-seqs 64``)."""

    kind: Literal["set-engine-flag"]
    flag: str = Field(pattern=r"^--[a-z0-9][a-z0-9-]*$")
    value: str | int | float | bool = True
    """``true`` for a flag without a value."""


class LowerGpuMemoryUtilization(_Action):
    """Restart the engine with a lower ``--gpu-memory-utilization``."""

    kind: Literal["lower-gpu-memory-utilization"]
    to: float = Field(gt=0.0, le=1.0)


class ReduceMaxModelLen(_Action):
    """Restart the engine with a smaller ``--max-model-len`` (less KV cache per sequence)."""

    kind: Literal["reduce-max-model-len"]
    to: int = Field(ge=1)


class Wait(_Action):
    """Wait: a fixed time, or until a log line appears."""

    kind: Literal["wait"]
    duration: Duration | None = None
    until_log: Regex | None = None

    @model_validator(mode="after")
    def _something(self) -> Wait:
        if self.duration is None and self.until_log is None:
            raise ValueError("wait needs duration or until_log")
        return self


class Manual(_Action):
    """A step for a human, in the runbook's words."""

    kind: Literal["manual"]
    text: str = Field(min_length=1)


Action = Annotated[
    Union[  # noqa: UP007
        RolloutUndo,
        RestartDeployment,
        DeletePods,
        Scale,
        SetImage,
        AddPullSecret,
        SetStorageClass,
        RaiseMemoryLimit,
        SetResources,
        AddToleration,
        RaiseQuota,
        GrantPermission,
        ApplyManifest,
        PatchConfig,
        SetEnv,
        SetProbe,
        MountShm,
        FreePort,
        StopHog,
        FixDns,
        RestoreModel,
        SetEngineFlag,
        LowerGpuMemoryUtilization,
        ReduceMaxModelLen,
        Wait,
        Manual,
    ],
    Field(discriminator="kind"),
]


# --- budget and reproducibility -------------------------------------------------------


class BudgetSource(StrEnum):
    SEED = "seed"
    DEFAULT = "default"


class Budget(_Strict):
    """The time the runbook allows: ``recover`` from the failure's start to service restored."""

    recover: Duration = DEFAULT_RECOVER
    detect: Duration | None = None
    source: BudgetSource
    """``seed``: the runbook gives this time box (``section`` names it); ``default``: it
    gives none, and ``recover`` is the stated default (15 minutes)."""
    section: str | None = None
    """The heading of the entry's source file that gives the time box."""

    @model_validator(mode="after")
    def _section(self) -> Budget:
        if self.source is BudgetSource.SEED and not self.section:
            raise ValueError("a budget from the seed names the seed's section")
        if self.source is BudgetSource.DEFAULT and self.section:
            raise ValueError("a default budget has no seed section")
        return self


class Tier(StrEnum):
    LOCAL = "local"
    KWOK = "kwok"
    KIND_ONLY = "kind-only"
    NONE = "none"


class Reproducible(_Strict):
    """Where a game day can make the failure happen for real.

    ``local`` and ``kwok`` as DESIGN.md defines the tiers (kind and real clusters can do
    what kwok does); ``kind-only``: it needs a real kubelet and container runtime;
    ``none``: no tier can. ``kind-only`` and ``none`` stand alone and need a ``reason``.
    """

    tiers: tuple[Tier, ...] = Field(min_length=1)
    reason: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Reproducible:
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError("tiers are listed twice")
        alone = {Tier.KIND_ONLY, Tier.NONE} & set(self.tiers)
        if alone and len(self.tiers) > 1:
            raise ValueError(f"{', '.join(sorted(alone))} cannot be combined with other tiers")
        if alone and not (self.reason and self.reason.strip()):
            raise ValueError(f"reproducible {self.tiers[0]} needs a reason")
        return self

    @property
    def nowhere(self) -> bool:
        return self.tiers == (Tier.NONE,)


# --- entries and the catalog ----------------------------------------------------------


class Entry(_Strict):
    code: Code
    title: str = Field(min_length=1)
    category: Category
    cause: str = Field(min_length=1)
    source: SeedRef
    see_also: tuple[SeedRef, ...] = ()
    """Other seed sections that describe the same failure."""
    related: tuple[Code, ...] = ()
    """Codes of entries to look at with this one (a symptom and its causes)."""
    signatures: tuple[Signature, ...] = ()
    remediation: tuple[Action, ...] = Field(min_length=1)
    budget: Budget
    reproducible: Reproducible
    faults: tuple[str, ...] = ()
    """The harness's fault types that reproduce it."""

    @model_validator(mode="after")
    def _observable(self) -> Entry:
        if not self.signatures and not self.reproducible.nowhere:
            raise ValueError(f"{self.code}: an entry that can be reproduced needs a signature")
        if self.code in self.related:
            raise ValueError(f"{self.code} lists itself as related")
        return self

    def seed_refs(self) -> tuple[SeedRef, ...]:
        """Every seed section the entry names: its source, its see-also, its budget's."""
        refs = (self.source, *self.see_also)
        if self.budget.section:
            refs += (SeedRef(file=self.source.file, section=self.budget.section),)
        return refs


class Catalog(_Strict):
    api_version: Literal["gameday/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["RunbookCatalog"]
    entries: tuple[Entry, ...] = Field(min_length=1)

    _index: dict[str, Entry] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_and_linked(self) -> Catalog:
        seen: dict[str, int] = {}
        for position, entry in enumerate(self.entries):
            if entry.code in seen:
                raise ValueError(
                    f"code {entry.code} is used by entries[{seen[entry.code]}] "
                    f"and entries[{position}]"
                )
            seen[entry.code] = position
        for entry in self.entries:
            unknown = [code for code in entry.related if code not in seen]
            if unknown:
                raise ValueError(f"{entry.code}: related codes not in the catalog: {unknown}")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._index.update((entry.code, entry) for entry in self.entries)

    def codes(self) -> list[str]:
        return [entry.code for entry in self.entries]

    def find(self, code: str) -> Entry | None:
        return self._index.get(code)

    def get(self, code: str) -> Entry:
        """The entry for ``code``; :class:`UsageError`, with the nearest codes, if unknown."""
        entry = self._index.get(code)
        if entry is not None:
            return entry
        by_case = {known.lower(): known for known in self._index}
        close = [by_case[code.lower()]] if code.lower() in by_case else []
        close += [
            known
            for known in difflib.get_close_matches(code, list(self._index), n=3, cutoff=0.6)
            if known not in close
        ]
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(
            f"unknown runbook code {code!r}{hint} (`python -m gameday.runbooks` lists them)"
        )

    def __contains__(self, code: object) -> bool:
        return code in self._index
