"""dns-breakage and image-pull-secret-removed on Kubernetes, the parts that need no
cluster: the Corefile rewrite, the dead resolver, which pull secrets go, the kube-system
refusals (plan and apply), and the diagnosis of a 401 against a missing image."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from gameday.core.changes import ChangeSet
from gameday.core.errors import InjectionError, ScenarioError
from gameday.core.events import EventBus, FaultApplied, KubeEvent, PodObserved
from gameday.core.journal import Journal
from gameday.engine.plan import check_plan
from gameday.injectors.base import FaultContext, Injector, faults
from gameday.injectors.kubernetes.dns_breakage import (
    DnsBreakage,
    DnsBreakageSpec,
    dead_dns_config,
    with_forward_to,
)
from gameday.injectors.kubernetes.image_pull_secret_removed import without_secret
from gameday.plugins import catalog, load_builtins
from gameday.runbooks import load_catalog
from gameday.runbooks.diagnose import diagnose_events
from gameday.scenario.loader import parse_scenario
from gameday.targets.base import TargetContext
from gameday.targets.kubernetes.spec import KubernetesTargetSpec
from gameday.targets.kubernetes.target import KubernetesTarget

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0

KIND_COREFILE = """.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
    }
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
}
example.org:53 {
    forward example.org 10.0.0.53 10.0.0.54
}
"""


def test_the_forward_targets_are_replaced_and_nothing_else() -> None:
    rewritten, upstreams = with_forward_to(KIND_COREFILE, "192.0.2.1")
    assert upstreams == ["/etc/resolv.conf", "10.0.0.53 10.0.0.54"]
    assert "    forward . 192.0.2.1 {\n       max_concurrent 1000\n    }" in rewritten
    assert "    forward example.org 192.0.2.1\n" in rewritten
    unchanged = [line for line in KIND_COREFILE.splitlines() if "forward" not in line]
    assert [line for line in rewritten.splitlines() if "forward" not in line] == unchanged


def test_a_corefile_without_forward_is_refused() -> None:
    with pytest.raises(InjectionError, match="no forward directive"):
        with_forward_to(".:53 {\n    errors\n    cache 30\n}\n", "192.0.2.1")


def test_the_dead_resolver_searches_as_cluster_first_would() -> None:
    assert dead_dns_config("ns", "192.0.2.1", "cluster.local") == {
        "nameservers": ["192.0.2.1"],
        "searches": ["ns.svc.cluster.local", "svc.cluster.local", "cluster.local"],
        "options": [{"name": "ndots", "value": "5"}],
    }


def test_only_the_coredns_modes_need_kube_system() -> None:
    assert DnsBreakage.needs_kube_system(
        DnsBreakageSpec(name="f", type="dns-breakage", mode="coredns-scaled-to-zero")
    )
    assert DnsBreakage.needs_kube_system(
        DnsBreakageSpec(name="f", type="dns-breakage", mode="corefile")
    )
    assert not DnsBreakage.needs_kube_system(
        DnsBreakageSpec(name="f", type="dns-breakage", mode="dns-config")
    )
    load_builtins()  # every other fault keeps the base's answer (no)
    declaring = [
        key
        for key, cls in faults.items()
        if cls.needs_kube_system.__func__ is not Injector.needs_kube_system.__func__  # type: ignore[attr-defined]
    ]
    assert declaring == ["kubernetes/dns-breakage"]


def test_which_pull_secrets_go() -> None:
    two = [{"name": "a"}, {"name": "b"}]
    assert without_secret(two, None) is None  # every one: the field goes
    assert without_secret(two, "a") == [{"name": "b"}]
    assert without_secret([{"name": "a"}], "a") is None
    with pytest.raises(InjectionError, match="has no imagePullSecrets to remove"):
        without_secret(None, None)
    with pytest.raises(InjectionError, match=r"no pull secret 'c' \(it has: a, b\)"):
        without_secret(two, "c")


SCENARIO = """\
apiVersion: gameday/v1alpha1
kind: Scenario
metadata: {name: dns, runbook: NETWORK002}
target:
  kubernetes:
    namespace: sandbox
    workload: {deployment: inference-server}
{switches}faults:
  - {name: gone, type: dns-breakage, at: 1s, duration: 10s, mode: {mode}}
expect:
  - runbook: {code: NETWORK002, within: 30s}
"""


def _plan(mode: str, switches: str) -> None:
    text = SCENARIO.replace("{switches}", switches).replace("{mode}", mode)
    check_plan([parse_scenario(text, "dns.yaml", catalog())])


@pytest.mark.parametrize(
    "switches",
    ["", "    allow_kube_system: true\n"],
    ids=["neither", "allowed but not listed"],
)
@pytest.mark.parametrize("mode", ["coredns-scaled-to-zero", "corefile"])
def test_a_kube_system_mode_is_refused_by_the_plan_unless_the_target_allows_it(
    mode: str, switches: str
) -> None:
    with pytest.raises(ScenarioError) as refused:
        _plan(mode, switches)
    (issue,) = refused.value.issues
    fault_line = 9 + switches.count("\n")
    assert (issue.file, issue.line, issue.field) == ("dns.yaml", fault_line, "faults[0].mode")
    assert "changes objects in kube-system; the target must set allow_kube_system" in str(
        issue.message
    )
    # both switches: planned; and dns-config touches the workload's namespace only
    _plan(mode, "    namespaces: [kube-system]\n    allow_kube_system: true\n")
    _plan("dns-config", switches)


@pytest.mark.parametrize("mode", ["coredns-scaled-to-zero", "corefile"])
def test_apply_refuses_kube_system_too_before_reaching_the_cluster(
    mode: str, tmp_path: Path
) -> None:
    """The plan is the first guard; the fault does not rely on it (a plugin runner, a
    scenario built in code)."""
    journal = Journal(tmp_path / "journal.jsonl", "run")
    bus = EventBus()
    spec = KubernetesTargetSpec(namespace="sandbox", workload={"deployment": "inference-server"})
    target = KubernetesTarget(
        spec,
        TargetContext(
            scenario="s",
            run_id="run",
            journal=journal,
            bus=bus,
            scenario_dir=tmp_path,
            artifacts=tmp_path,
            stop=threading.Event(),
        ),
    )
    changes = ChangeSet(journal, "s", "gone")
    fault = DnsBreakage(
        DnsBreakageSpec(name="gone", type="dns-breakage", mode=mode),
        target,
        FaultContext(
            scenario="s", bus=bus, changes=changes, stop=threading.Event(), artifacts=tmp_path
        ),
    )
    with pytest.raises(InjectionError, match="changes kube-system, which this scenario does not"):
        fault.apply()  # the target is not even up: the refusal comes first
    assert len(changes) == 0


# -- what a 401 is diagnosed as ----------------------------------------------------------

IMAGE = "private.registry.gameday.test/llm-gameday/sim:0.1.0"
CRI_401 = (
    f'rpc error: code = Unknown desc = failed to pull and unpack image "{IMAGE}": failed to '
    f'resolve reference "{IMAGE}": pulling from host private.registry.gameday.test failed '
    "with status code [manifests 0.1.0]: 401 Unauthorized"
)
CRI_404 = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/x/y:bad": '
    'failed to resolve reference "docker.io/x/y:bad": docker.io/x/y:bad: not found'
)


def _pull_failure(image: str, cri_error: str) -> list[object]:
    def pod(t: float, reason: str, message: str) -> PodObserved:
        container = ("server", "waiting", reason, message, None, 0)
        return PodObserved(
            ts=T0 + t,
            scenario="s",
            pod="p",
            namespace="ns",
            phase="Pending",
            ready=False,
            containers=(container,),
        )

    return [
        FaultApplied(
            ts=T0, scenario="s", fault="f", fault_type="t", description="", started=T0, offset=1.0
        ),
        KubeEvent(
            ts=T0 + 1,
            scenario="s",
            reason="Failed",
            message=f'Failed to pull image "{image}": {cri_error}',
            type="Warning",
            involved_kind="Pod",
            involved_name="p",
        ),
        pod(1.1, "ErrImagePull", cri_error),
        pod(
            2.1, "ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: {cri_error}'
        ),
    ]


def test_a_401_is_registry_authentication_and_a_missing_tag_is_an_image_pull_failure() -> None:
    catalog_ = load_catalog()
    auth = diagnose_events(_pull_failure(IMAGE, CRI_401), "s", catalog_)  # type: ignore[arg-type]
    assert auth is not None and auth[0].code == "AUTH002", [d.summary() for d in auth or []]
    assert auth[0].score > 2 * next(d.score for d in auth if d.code == "DEPLOYMENT003")
    missing = diagnose_events(_pull_failure("x/y:bad", CRI_404), "s", catalog_)  # type: ignore[arg-type]
    assert missing is not None and [d.code for d in missing] == ["DEPLOYMENT003"]
