"""The pod, event, rollout and endpoints expectations and the bad-image-tag fault's tag
arithmetic, on observations built in the shape the watches emit; the watches' conversion
of the API's Deployments and EndpointSlices."""

from __future__ import annotations

import pytest

from gameday.assertions.base import ExpectationContext
from gameday.assertions.endpoints import EndpointsExpectation, EndpointsParams
from gameday.assertions.event import EventExpectation, EventParams
from gameday.assertions.pod import PodExpectation, PodParams
from gameday.assertions.rollout import (
    RolloutExpectation,
    RolloutParams,
    complete,
    describe_deployment,
)
from gameday.core.events import (
    DeploymentObserved,
    EndpointSliceObserved,
    Event,
    KubeEvent,
    PodObserved,
    event_from_record,
)
from gameday.core.observations import Observations
from gameday.injectors.kubernetes.bad_image_tag import with_tag
from gameday.observe.kubernetes import deployment_observed, endpoint_slice_observed

T0 = 1_800_000_000.0


def pod(
    t: float,
    name: str,
    phase: str,
    ready: bool,
    *containers: tuple[str, str, str, str, int | None, int],
    deleted: bool = False,
) -> PodObserved:
    return PodObserved(
        ts=T0 + t,
        scenario="s",
        pod=name,
        namespace="ns",
        phase=phase,
        ready=ready,
        containers=containers,
        deleted=deleted,
    )


RUNNING = ("server", "running", "", "", None, 0)
PULL = ("server", "waiting", "ImagePullBackOff", 'Back-off pulling image "x:bad"', None, 0)


def observed(*events: Event) -> Observations:
    observations = Observations("s")
    for event in events:
        observations(event)
    return observations


def check(params: PodParams, *events: Event, since: float = T0) -> float | None:
    verdict = PodExpectation(params, ExpectationContext("s")).check(observed(*events), since)
    return verdict.at if verdict.met else None


def test_any_pod_in_a_waiting_state() -> None:
    events = (pod(0, "a", "Running", True, RUNNING), pod(3, "b", "Pending", False, PULL))
    assert check(PodParams(waiting="ImagePullBackOff"), *events) == T0 + 3
    assert check(PodParams(waiting="ErrImagePull"), *events) is None


def test_every_pod_means_all_at_once_and_deleted_pods_leave_the_set() -> None:
    events = (
        pod(0, "a", "Running", True, RUNNING),
        pod(1, "b", "Pending", False, PULL),
        pod(5, "c", "Running", True, RUNNING),
        pod(6, "b", "Pending", False, PULL, deleted=True),
    )
    every = PodParams(phase="Running", ready=True, every=True)
    assert check(every, *events, since=T0 + 1) == T0 + 6
    assert check(every, *events, since=T0) == T0  # pod a alone, before b appeared


def test_a_state_that_ended_before_the_phase_does_not_count_but_one_that_lasts_does() -> None:
    events = (pod(0, "a", "Pending", False, PULL), pod(2, "a", "Running", True, RUNNING))
    assert check(PodParams(waiting="ImagePullBackOff"), *events, since=T0 + 5) is None
    # still running at +5: held from the phase's start
    assert check(PodParams(phase="Running"), *events, since=T0 + 5) == T0 + 5


def test_terminated_reads_the_last_termination_of_a_restarted_container() -> None:
    restarted = ("server", "running", "OOMKilled", "", 137, 2)
    events = (pod(1, "a", "Running", True, restarted),)
    assert check(PodParams(terminated="OOMKilled", exit_code=137, restarts=2), *events) == T0 + 1
    assert check(PodParams(terminated="OOMKilled", restarts=3), *events) is None


def test_pod_explain_shows_the_pods_as_last_seen() -> None:
    expectation = PodExpectation(PodParams(waiting="ErrImagePull"), ExpectationContext("s"))
    lines = expectation.explain(observed(pod(1, "a", "Running", True, RUNNING)), T0)
    assert lines == [
        "never a pod waiting=ErrImagePull; the pods as last seen (+1.0s):",
        "a Running ready: server running",
    ]


def test_a_pod_condition_by_type_status_and_reason_and_who_reports_it() -> None:
    evicted = PodObserved(
        ts=T0 + 2,
        scenario="s",
        pod="a",
        namespace="ns",
        phase="Running",
        ready=False,
        conditions=(
            ("PodScheduled", "True", ""),
            ("Ready", "False", "ContainersNotReady"),
            ("DisruptionTarget", "True", "EvictionByEvictionAPI"),
        ),
    )
    events = (pod(0, "a", "Running", True, RUNNING), evicted)
    not_ready = PodParams.model_validate(
        {"condition": {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}}
    )
    assert check(not_ready, *events) == T0 + 2
    assert check(PodParams.model_validate({"condition": {"type": "Ready"}}), *events) is None
    disrupted = PodParams.model_validate({"condition": {"type": "DisruptionTarget"}})
    assert check(disrupted, *events) == T0 + 2
    assert not_ready.describe() == "a pod condition=Ready=False/ContainersNotReady"
    reporters = PodExpectation(not_ready, ExpectationContext("s")).reported_by()
    assert reporters == ("kubelet",)
    assert PodExpectation(disrupted, ExpectationContext("s")).reported_by() == ()
    scheduled = PodParams.model_validate({"condition": {"type": "PodScheduled", "status": "False"}})
    assert PodExpectation(scheduled, ExpectationContext("s")).reported_by() == ("kube-scheduler",)


def kube_event(t: float, reason: str, message: str, kind: str = "Pod") -> KubeEvent:
    return KubeEvent(
        ts=T0 + t,
        scenario="s",
        reason=reason,
        message=message,
        type="Warning",
        involved_kind=kind,
        involved_name="a",
    )


def test_event_by_reason_kind_and_message() -> None:
    events = observed(
        kube_event(1, "BackOff", 'Back-off pulling image "x:bad"'),
        kube_event(2, "Failed", 'Failed to pull image "x:bad": not found'),
    )
    wanted = EventExpectation(
        EventParams(reason="Failed", kind="Pod", message='Failed to pull image "[^"]+:bad"'),
        ExpectationContext("s"),
    )
    assert wanted.check(events, T0).at == T0 + 2
    other = EventExpectation(
        EventParams(reason="Failed", kind="ReplicaSet"), ExpectationContext("s")
    )
    assert not other.check(events, T0).met
    assert other.explain(events, T0)[0] == "none of 2 events matched; the last ones:"
    named = EventParams(reason="Failed", name="^a$")
    assert named.describe() == "event Failed on /^a$/"
    assert EventExpectation(named, ExpectationContext("s")).check(events, T0).at == T0 + 2
    elsewhere = EventParams(reason="Failed", kind="Pod", name="^inference-server-")
    assert not EventExpectation(elsewhere, ExpectationContext("s")).check(events, T0).met


def test_a_bad_message_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        EventParams(reason="Failed", message="(")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("llm-gameday/sim:0.1.0", "llm-gameday/sim:bad"),
        ("vllm/vllm-openai", "vllm/vllm-openai:bad"),
        ("registry.local:5000/team/vllm:v1", "registry.local:5000/team/vllm:bad"),
        ("registry.local:5000/vllm", "registry.local:5000/vllm:bad"),
        ("vllm/vllm-openai@sha256:" + "a" * 64, "vllm/vllm-openai:bad"),
    ],
)
def test_with_tag_replaces_only_the_tag(image: str, expected: str) -> None:
    assert with_tag(image, "bad") == expected


# -- rollout -------------------------------------------------------------------------

PROGRESSING = ("Progressing", "True", "ReplicaSetUpdated", 'ReplicaSet "w-2" is progressing.')
DONE = (
    "Progressing",
    "True",
    "NewReplicaSetAvailable",
    'ReplicaSet "w-1" has successfully progressed.',
)
STALLED = (
    "Progressing",
    "False",
    "ProgressDeadlineExceeded",
    'ReplicaSet "w-2" has timed out progressing.',
)
AVAILABLE = (
    "Available",
    "True",
    "MinimumReplicasAvailable",
    "Deployment has minimum availability.",
)


def deployment(
    t: float,
    *conditions: tuple[str, str, str, str],
    name: str = "w",
    workload: bool = True,
    generation: int = 2,
    observed: int = 2,
    current: int = 2,
    updated: int = 2,
    ready: int = 2,
    available: int = 2,
    deleted: bool = False,
) -> DeploymentObserved:
    return DeploymentObserved(
        ts=T0 + t,
        scenario="s",
        deployment=name,
        namespace="ns",
        workload=workload,
        generation=generation,
        observed_generation=observed,
        replicas=2,
        current=current,
        updated=updated,
        ready=ready,
        available=available,
        conditions=conditions,
        deleted=deleted,
    )


def rollout(params: RolloutParams, *events: Event, since: float = T0) -> float | None:
    verdict = RolloutExpectation(params, ExpectationContext("s")).check(observed(*events), since)
    return verdict.at if verdict.met else None


def test_complete_needs_the_latest_generation_and_every_replica_new_ready_and_available() -> None:
    events = (
        deployment(0, PROGRESSING, AVAILABLE, generation=3, observed=2),  # status is old
        deployment(1, PROGRESSING, AVAILABLE, generation=3, observed=3, current=3, updated=1),
        deployment(2, PROGRESSING, AVAILABLE, generation=3, observed=3, current=3, ready=3),
        deployment(3, PROGRESSING, AVAILABLE, generation=3, observed=3, available=1),
        deployment(4, DONE, AVAILABLE, generation=3, observed=3),
    )
    assert [complete(e) for e in events] == [False, False, False, False, True]
    assert rollout(RolloutParams(complete=True), *events) == T0 + 4
    assert rollout(RolloutParams(complete=False), *events) == T0
    assert rollout(RolloutParams(complete=True, reason="NewReplicaSetAvailable"), *events) == T0 + 4


def test_a_stalled_rollout_by_condition_status_and_reason() -> None:
    events = (
        deployment(0, DONE, AVAILABLE),
        deployment(5, PROGRESSING, AVAILABLE, generation=3, observed=3, current=3, updated=1),
        deployment(15, STALLED, AVAILABLE, generation=3, observed=3, current=3, updated=1),
    )
    stalled = RolloutParams(progressing=False, reason="ProgressDeadlineExceeded", available=True)
    assert rollout(stalled, *events) == T0 + 15
    assert rollout(RolloutParams(progressing=True), *events) == T0
    assert rollout(RolloutParams(available=False), *events) is None
    # a condition of that type, but with another status, does not hold
    assert (
        rollout(RolloutParams(progressing=False, reason="NewReplicaSetAvailable"), *events) is None
    )


def test_a_rollout_state_that_ended_before_the_phase_does_not_count() -> None:
    events = (
        deployment(0, DONE, AVAILABLE),
        deployment(2, PROGRESSING, AVAILABLE, generation=3, observed=3, updated=1, current=3),
    )
    assert rollout(RolloutParams(complete=True), *events, since=T0 + 5) is None
    assert rollout(RolloutParams(complete=False), *events, since=T0 + 5) == T0 + 5


def test_rollout_reads_the_workload_unless_a_deployment_is_named() -> None:
    events = (
        deployment(0, STALLED, name="hog", workload=False),
        deployment(1, DONE, AVAILABLE),
        deployment(2, DONE, AVAILABLE, deleted=True),
    )
    assert rollout(RolloutParams(reason="ProgressDeadlineExceeded"), *events) is None
    named = RolloutParams(deployment="hog", reason="ProgressDeadlineExceeded")
    assert rollout(named, *events) == T0
    # deleted: no state holds after it
    assert rollout(RolloutParams(complete=True), *events, since=T0 + 3) is None


def test_rollout_explain_shows_the_deployment_as_last_seen() -> None:
    params = RolloutParams(complete=True, within=60)
    expectation = RolloutExpectation(params, ExpectationContext("s"))
    events = observed(
        deployment(1, PROGRESSING, AVAILABLE, generation=3, observed=3, current=3, updated=1),
        deployment(2, STALLED, AVAILABLE, generation=3, observed=3, current=3, updated=1),
    )
    assert expectation.explain(events, T0) == [
        "never rollout of the workload complete; as last seen (+2.0s):",
        "w generation 3: 2 wanted, 3 current, 1 updated, 2 ready, 2 available; "
        "Progressing=False ProgressDeadlineExceeded: "
        'ReplicaSet "w-2" has timed out progressing.; '
        "Available=True MinimumReplicasAvailable: Deployment has minimum availability.",
        "before, +1.0s: w generation 3: 2 wanted, 3 current, 1 updated, 2 ready, 2 available; "
        'Progressing=True ReplicaSetUpdated: ReplicaSet "w-2" is progressing.; '
        "Available=True MinimumReplicasAvailable: Deployment has minimum availability.",
    ]
    other = RolloutExpectation(
        RolloutParams(deployment="x", complete=True), ExpectationContext("s")
    )
    assert other.explain(events, T0) == [
        "the deployment x was never observed in the target's namespace"
    ]
    stale = deployment(0, generation=4, observed=3)
    assert "generation 4 (status of generation 3): " in describe_deployment(stale)
    assert describe_deployment(deployment(0)).endswith("; no conditions yet")


def test_rollout_needs_something_to_expect() -> None:
    with pytest.raises(ValueError, match="give at least one of: progressing, available"):
        RolloutParams()
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        RolloutParams.model_validate({"complete": True, "replicas": 2})
    assert (
        RolloutParams(complete=True, progressing=False, reason="X").describe()
        == "rollout of the workload complete progressing=False reason=X"
    )


# -- endpoints -----------------------------------------------------------------------


def endpoint_slice(
    t: float,
    name: str,
    *ready: str,
    not_ready: tuple[str, ...] = (),
    service: str = "web",
    deleted: bool = False,
) -> EndpointSliceObserved:
    return EndpointSliceObserved(
        ts=T0 + t,
        scenario="s",
        service=service,
        slice=name,
        namespace="ns",
        ready=ready,
        not_ready=not_ready,
        deleted=deleted,
    )


def endpoints(params: EndpointsParams, *events: Event, since: float = T0) -> float | None:
    verdict = EndpointsExpectation(params, ExpectationContext("s")).check(observed(*events), since)
    return verdict.at if verdict.met else None


def test_ready_addresses_are_counted_over_the_services_live_slices() -> None:
    events = (
        endpoint_slice(0, "web-a", "10.0.0.1", "10.0.0.2"),
        endpoint_slice(1, "web-b", "10.0.0.3", not_ready=("10.0.0.4",)),
        endpoint_slice(2, "api-a", "10.0.1.1", "10.0.1.2", "10.0.1.3", service="api"),
        endpoint_slice(3, "web-a", "10.0.0.1", not_ready=("10.0.0.2",)),
        endpoint_slice(4, "web-b", deleted=True),
    )
    assert endpoints(EndpointsParams(service="web", ready=3), *events) == T0 + 1
    assert endpoints(EndpointsParams(service="web", ready=1), *events) == T0 + 4
    assert endpoints(EndpointsParams(service="web", min_ready=3, max_ready=3), *events) == T0 + 1
    assert endpoints(EndpointsParams(service="web", max_ready=1), *events) == T0 + 4
    assert endpoints(EndpointsParams(service="web", min_ready=4), *events) is None
    assert endpoints(EndpointsParams(service="api", ready=3), *events) == T0 + 2
    # the same address in two slices (a slice being replaced) counts once
    twice = (endpoint_slice(0, "web-a", "10.0.0.1"), endpoint_slice(1, "web-b", "10.0.0.1"))
    assert endpoints(EndpointsParams(service="web", ready=2), *twice) is None


def test_a_service_whose_selector_matches_nothing_has_zero_ready() -> None:
    events = (endpoint_slice(0, "empty-x", service="empty"),)
    assert endpoints(EndpointsParams(service="empty", ready=0), *events) == T0
    expectation = EndpointsExpectation(
        EndpointsParams(service="empty", min_ready=1), ExpectationContext("s")
    )
    assert expectation.explain(observed(*events), T0) == [
        "never service empty has >= 1 ready addresses; the last ready counts since the phase "
        "began: [0]",
        "as last seen (+0.0s): 0 ready, 0 not ready, in 1 EndpointSlice(s)",
    ]
    # no slice at all is not zero: nothing was observed
    unknown = EndpointsExpectation(
        EndpointsParams(service="nope", ready=0), ExpectationContext("s")
    )
    assert not unknown.check(observed(*events), T0).met
    assert unknown.explain(observed(*events), T0)[0].startswith(
        "no EndpointSlice of service nope was observed"
    )


def test_an_endpoint_count_that_ended_before_the_phase_does_not_count() -> None:
    events = (endpoint_slice(0, "web-a", "10.0.0.1"), endpoint_slice(2, "web-a"))
    assert endpoints(EndpointsParams(service="web", ready=1), *events, since=T0 + 5) is None
    assert endpoints(EndpointsParams(service="web", ready=0), *events, since=T0 + 5) == T0 + 5


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"service": "web"}, "give ready, min_ready or max_ready"),
        ({"service": "web", "ready": 1, "min_ready": 1}, "not both"),
        ({"service": "web", "min_ready": 3, "max_ready": 2}, "min_ready must not be above"),
        ({"service": "web", "ready": -1}, "greater than or equal to 0"),
        ({"ready": 1}, "Field required"),
    ],
)
def test_endpoints_parameters_are_checked(params: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        EndpointsParams.model_validate(params)


def test_endpoints_describe() -> None:
    assert EndpointsParams(service="web", ready=2).describe() == (
        "service web has 2 ready addresses"
    )
    assert EndpointsParams(service="web", min_ready=1, max_ready=3).describe() == (
        "service web has 1 to 3 ready addresses"
    )


# -- from the API's objects, and through the journal ------------------------------------


def test_a_deployment_as_the_watch_reports_it() -> None:
    from kubernetes import client

    api_object = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="w", namespace="ns", generation=3, resource_version="42"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "w"}),
            template=client.V1PodTemplateSpec(),
        ),
        status=client.V1DeploymentStatus(
            observed_generation=3,
            replicas=3,
            updated_replicas=1,
            ready_replicas=2,
            available_replicas=2,
            conditions=[
                client.V1DeploymentCondition(
                    type=kind, status=status, reason=reason, message=message
                )
                for kind, status, reason, message in (STALLED, AVAILABLE)
            ],
        ),
    )
    seen = deployment_observed(api_object, "s", workload="w")
    assert (seen.workload, seen.generation, seen.observed_generation) == (True, 3, 3)
    assert (seen.replicas, seen.current, seen.updated, seen.ready, seen.available) == (
        2,
        3,
        1,
        2,
        2,
    )
    assert seen.conditions == (STALLED, AVAILABLE)
    assert seen.resource_version == "42"
    # a Deployment the controller has not acted on yet has no status
    fresh = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="x", namespace="ns", generation=1),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "x"}),
            template=client.V1PodTemplateSpec(),
        ),
    )
    new = deployment_observed(fresh, "s", workload="w")
    assert (new.workload, new.observed_generation, new.current, new.conditions) == (
        False,
        0,
        0,
        (),
    )
    assert not complete(new)


def test_an_endpoint_slice_as_the_watch_reports_it() -> None:
    from kubernetes import client

    def endpoint(address: str, ready: bool | None) -> client.V1Endpoint:
        return client.V1Endpoint(
            addresses=[address], conditions=client.V1EndpointConditions(ready=ready)
        )

    api_object = client.V1EndpointSlice(
        address_type="IPv4",
        metadata=client.V1ObjectMeta(
            name="web-abc", namespace="ns", labels={"kubernetes.io/service-name": "web"}
        ),
        endpoints=[
            endpoint("10.0.0.2", True),
            endpoint("10.0.0.1", None),
            endpoint("10.0.0.3", False),
        ],
    )
    seen = endpoint_slice_observed(api_object, "s")
    # an unset ready condition means ready (discovery.k8s.io/v1)
    assert (seen.service, seen.slice, seen.ready, seen.not_ready) == (
        "web",
        "web-abc",
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.0.3",),
    )
    empty = client.V1EndpointSlice(
        address_type="IPv4",
        metadata=client.V1ObjectMeta(
            name="none-x", namespace="ns", labels={"kubernetes.io/service-name": "none"}
        ),
        endpoints=None,
    )
    assert endpoint_slice_observed(empty, "s", deleted=True).ready == ()


def test_rollout_and_endpoint_observations_survive_the_journal() -> None:
    import json

    for event in (
        deployment(1, STALLED, AVAILABLE, updated=1),
        endpoint_slice(2, "web-a", "10.0.0.1", not_ready=("10.0.0.2",)),
    ):
        record = json.loads(json.dumps(event.to_record()))
        assert event_from_record(record) == event
