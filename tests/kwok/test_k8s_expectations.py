"""The rollout and endpoints expectations, fed by the harness's own watches, on the kwok
tier: Deployment conditions from the real deployment controller, EndpointSlices from the
real endpointslice controller (pod readiness from kwok's simulated kubelets). And
``gameday run --dry-run`` of every Kubernetes scenario: it prints each change and makes
none."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from gameday.assertions.base import Expectation, ExpectationContext, Verdict
from gameday.assertions.endpoints import EndpointsExpectation, EndpointsParams
from gameday.assertions.rollout import RolloutExpectation, RolloutParams
from gameday.core.events import Event, EventBus, Note
from gameday.core.observations import Observations
from gameday.injectors.base import faults
from gameday.observe.kubernetes import ClusterWatch
from gameday.plugins import catalog
from gameday.scenario.loader import load_scenarios
from gameday.targets.kubernetes.cluster import as_json
from gameday.testenv import KwokEnvInfo
from tests.kwok.scenarios import (
    REPO,
    gameday_run,
    ready_pods,
    run_as_the_harness_account,
    scenario_in,
    scenario_report,
    workload,
)

pytestmark = pytest.mark.kwok

__all__ = ["workload"]  # the fixture, for pytest

SELECTOR = "app.kubernetes.io/name=inference-server"


@dataclass
class Watched:
    """What the harness's watches observed, as a run's expectations read it."""

    bus: EventBus
    observed: Observations
    warnings: list[str]

    def until(self, expectation: Expectation[Any], since: float, timeout: float = 60) -> Verdict:
        """Check the expectation each time something new is observed, as the runner does."""
        deadline = time.monotonic() + timeout
        seen = self.bus.sequence
        while True:
            verdict = expectation.check(self.observed, since)
            if verdict.met:
                return verdict
            left = deadline - time.monotonic()
            if left <= 0:
                explained = "\n".join(expectation.explain(self.observed, since))
                raise AssertionError(f"{expectation.describe()} did not hold:\n{explained}")
            seen = self.bus.wait(seen, left)


@pytest.fixture
def watched(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> Iterator[Watched]:
    """The target's watches on ``namespace``, as deploy/rbac's account: the workload's
    pods, the namespace's Events, Deployments and Service EndpointSlices."""
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    as_harness = config.new_client_from_config(config_file=str(harness))
    bus = EventBus()
    watched = Watched(bus, Observations("t"), [])

    def warnings(event: Event) -> None:
        if isinstance(event, Note) and event.level == "warning":
            watched.warnings.append(event.message)

    bus.subscribe(watched.observed)
    bus.subscribe(warnings)
    watch = ClusterWatch(as_harness, bus, "t", namespace, SELECTOR, workload="inference-server")
    watch.start()
    assert watch.started.is_set()
    try:
        yield watched
    finally:
        watch.stop()
    # the account may watch all it needs (deploy/rbac/harness.yaml)
    assert [w for w in watched.warnings if "forbidden" in w] == []


def endpoints(**params: Any) -> EndpointsExpectation:
    return EndpointsExpectation(EndpointsParams(**params), ExpectationContext("t"))


def rollout(**params: Any) -> RolloutExpectation:
    return RolloutExpectation(RolloutParams(**params), ExpectationContext("t"))


def test_ready_addresses_follow_the_workload_as_it_scales(
    api: client.ApiClient, namespace: str, workload: dict[str, Any], watched: Watched
) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    begun = time.time()
    two = watched.until(endpoints(service="inference-server", ready=2), begun)
    addresses = {
        p.status.pod_ip for p in core.list_namespaced_pod(namespace, label_selector=SELECTOR).items
    }
    assert len(addresses) == 2 and all(a in two.evidence[0] for a in addresses), two.evidence
    watched.until(rollout(complete=True, progressing=True, available=True), begun)

    scaled = time.time()
    apps.patch_namespaced_deployment_scale("inference-server", namespace, {"spec": {"replicas": 3}})
    # the scale is a new generation the controller has not acted on yet: not complete
    moving = watched.until(rollout(complete=False), scaled).at
    assert moving is not None and moving > scaled
    three = watched.until(endpoints(service="inference-server", ready=3), scaled)
    assert three.at is not None and three.at > scaled
    done = watched.until(rollout(complete=True, reason="NewReplicaSetAvailable"), moving)
    assert "3 wanted, 3 current, 3 updated, 3 ready, 3 available" in done.evidence[0]
    # ready: 2 held before the scale, and no longer does
    assert (
        not endpoints(service="inference-server", ready=2).check(watched.observed, time.time()).met
    )

    shrunk = time.time()
    apps.patch_namespaced_deployment_scale("inference-server", namespace, {"spec": {"replicas": 1}})
    watched.until(endpoints(service="inference-server", max_ready=1, min_ready=1), shrunk)
    moving = watched.until(rollout(complete=False), shrunk).at
    assert moving is not None
    done = watched.until(rollout(complete=True), moving)
    assert "1 wanted, 1 current, 1 updated, 1 ready, 1 available" in done.evidence[0]


def test_a_service_whose_selector_matches_nothing_has_no_ready_address(
    api: client.ApiClient, namespace: str, workload: dict[str, Any], watched: Watched
) -> None:
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="nobody"),
        spec=client.V1ServiceSpec(
            selector={"app.kubernetes.io/name": "nothing-runs-this"},
            ports=[client.V1ServicePort(port=8000)],
        ),
    )
    created = time.time()
    client.CoreV1Api(api).create_namespaced_service(namespace, service)
    # the controller still writes a slice for it: an empty one
    empty = watched.until(endpoints(service="nobody", ready=0), created)
    assert "0 ready, 0 not ready, in 1 EndpointSlice(s)" in empty.evidence[0]
    at_least_one = endpoints(service="nobody", min_ready=1)
    assert not at_least_one.check(watched.observed, created).met
    assert "as last seen" in at_least_one.explain(watched.observed, created)[1]
    # the workload's Service beside it is unaffected
    watched.until(endpoints(service="inference-server", ready=2), created)


def test_a_stalled_rollout_is_progress_deadline_exceeded_and_unavailable(
    api: client.ApiClient, namespace: str, watched: Watched
) -> None:
    labels = {"app.kubernetes.io/name": "stalled"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="stalled"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            progress_deadline_seconds=5,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        # a tag the simulated registry does not have: ErrImagePull
                        client.V1Container(name="server", image="llm-gameday/sim:gameday-missing")
                    ]
                ),
            ),
        ),
    )
    created = time.time()
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment)
    stalled = watched.until(
        rollout(
            deployment="stalled",
            progressing=False,
            reason="ProgressDeadlineExceeded",
            available=False,
            complete=False,
        ),
        created,
        timeout=90,
    )
    evidence = stalled.evidence[0]
    assert "Progressing=False ProgressDeadlineExceeded" in evidence
    assert "Available=False MinimumReplicasUnavailable" in evidence
    assert "has timed out progressing" in evidence
    # without ``deployment``, the expectation reads the workload, which is not there
    absent = rollout(reason="ProgressDeadlineExceeded")
    assert not absent.check(watched.observed, created).met
    assert absent.explain(watched.observed, created) == [
        "the workload was never observed in the target's namespace"
    ]


def test_bad_image_tag_under_a_short_progress_deadline_is_progress_deadline_exceeded(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The bundled scenario, run as the harness, with the workload's progressDeadlineSeconds
    short enough for the stalled rollout to pass it while the fault is in place."""
    apps = client.AppsV1Api(api)
    apps.patch_namespaced_deployment(
        "inference-server", namespace, {"spec": {"progressDeadlineSeconds": 10}}
    )
    before = as_json(api, ready_pods(apps, namespace, "inference-server"))
    scenario = yaml.safe_load(scenario_in(namespace, tmp_path).read_text())
    scenario["expect"].append(
        {"rollout": {"progressing": False, "reason": "ProgressDeadlineExceeded", "within": "45s"}}
    )
    path = tmp_path / "bad-image-tag-deadline.yaml"
    path.write_text(yaml.safe_dump(scenario))
    reports = tmp_path / "reports"
    result = gameday_run(
        kwok,
        path,
        reports,
        kubeconfig=run_as_the_harness_account(api, kwok, namespace, tmp_path),
        monitoring=True,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    report = scenario_report(reports)
    assert report["outcome"] == "passed", report["reason"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for expectation in report["expectations"]:
        assert expectation["outcome"] == "passed", expectation
        by_kind.setdefault(expectation["kind"], []).append(expectation)
    (stalled,) = [e for e in by_kind["rollout"] if e["phase"] == "expect"]
    assert "Progressing=False ProgressDeadlineExceeded" in stalled["evidence"][0]
    (recovered,) = [e for e in by_kind["rollout"] if e["phase"] == "recover"]
    assert "Progressing=True NewReplicaSetAvailable" in recovered["evidence"][0]
    (serving,) = by_kind["endpoints"]
    assert "inference-server: 2 ready" in serving["evidence"][0]
    # the journal carries what the new watches saw, for `gameday report` and the diagnoser
    kinds = {
        json.loads(line).get("event")
        for line in next(reports.glob("*/journal.jsonl")).read_text().splitlines()
    }
    assert {"DeploymentObserved", "EndpointSliceObserved"} <= kinds
    after = as_json(api, ready_pods(apps, namespace, "inference-server"))
    assert after["spec"] == before["spec"]


def _state(api: client.ApiClient, namespace: str) -> dict[str, str]:
    """The resourceVersion of every object a Kubernetes fault may create or change: in the
    namespace, in kube-system (DNS), and the cluster-wide kinds (classes, CRDs)."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    rbac, discovery = client.RbacAuthorizationV1Api(api), client.DiscoveryV1Api(api)
    listings = {
        "deployment": apps.list_namespaced_deployment(namespace),
        "replicaset": apps.list_namespaced_replica_set(namespace),
        "pod": core.list_namespaced_pod(namespace),
        "service": core.list_namespaced_service(namespace),
        "endpointslice": discovery.list_namespaced_endpoint_slice(namespace),
        "configmap": core.list_namespaced_config_map(namespace),
        "secret": core.list_namespaced_secret(namespace),
        "serviceaccount": core.list_namespaced_service_account(namespace),
        "resourcequota": core.list_namespaced_resource_quota(namespace),
        "limitrange": core.list_namespaced_limit_range(namespace),
        "persistentvolumeclaim": core.list_namespaced_persistent_volume_claim(namespace),
        "role": rbac.list_namespaced_role(namespace),
        "rolebinding": rbac.list_namespaced_role_binding(namespace),
        "kube-system deployment": apps.list_namespaced_deployment("kube-system"),
        "kube-system configmap": core.list_namespaced_config_map("kube-system"),
        "storageclass": client.StorageV1Api(api).list_storage_class(),
        "crd": client.ApiextensionsV1Api(api).list_custom_resource_definition(),
    }
    return {
        f"{kind} {item.metadata.namespace or ''}/{item.metadata.name}": item.metadata.resource_version
        for kind, listing in listings.items()
        for item in listing.items  # type: ignore[attr-defined]
    }


def test_a_dry_run_of_every_kubernetes_scenario_names_each_change_and_makes_none(
    kwok: KwokEnvInfo,
    api: client.ApiClient,
    namespace: str,
    workload: dict[str, Any],
    tmp_path: Path,
) -> None:
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    suite = tmp_path / "suite"
    suite.mkdir()
    names = sorted(p.stem for p in (REPO / "scenarios" / "kubernetes").glob("*.yaml"))
    assert {"bad-image-tag", "gpu-quota", "pvc-misconfig"} <= set(names)
    paths = [scenario_in(namespace, suite, name) for name in names]
    before = _state(api, namespace)
    reports = tmp_path / "reports"
    result = gameday_run(kwok, suite, reports, "--dry-run", kubeconfig=harness)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = result.stdout
    assert f"dry run: {len(names)} scenario(s); nothing will be started or changed" in printed
    for item in load_scenarios(paths, catalog()):
        scenario = item.scenario
        assert f"scenario {scenario.name} ({item.path})" in printed
        for fault in scenario.faults:
            change = faults.lookup(scenario.target.kind, fault.type).describe(fault)
            assert f"fault {fault.name} ({fault.type}): {change}" in printed, change
    assert not reports.exists()  # not even a journal
    assert _state(api, namespace) == before


def test_a_watch_the_account_may_not_make_is_said_once_and_does_not_hold_up_the_start(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, tmp_path: Path
) -> None:
    harness = run_as_the_harness_account(api, kwok, namespace, tmp_path)
    as_harness = config.new_client_from_config(config_file=str(harness))
    bus = EventBus()
    notes: list[str] = []
    bus.subscribe(lambda e: notes.append(e.message) if isinstance(e, Note) else None)
    # kube-system: the account has no rule there, so each of the four watches is refused
    watch = ClusterWatch(as_harness, bus, "t", "kube-system", SELECTOR, workload="coredns")
    started = time.monotonic()
    watch.start(timeout=30)
    try:
        assert watch.started.is_set()
        assert time.monotonic() - started < 10
        seen = bus.sequence
        while len(notes) < 4 and time.monotonic() - started < 10:
            seen = bus.wait(seen, 1)
    finally:
        watch.stop()
    forbidden = sorted(n.split(" is forbidden")[0] for n in notes if "is forbidden" in n)
    assert forbidden == [
        "watch of list_namespaced_deployment",
        "watch of list_namespaced_endpoint_slice",
        "watch of list_namespaced_event",
        "watch of list_namespaced_pod",
    ], notes
