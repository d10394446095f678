"""The pod and event expectations and the bad-image-tag fault's tag arithmetic, on
observations built in the shape the pod and event watches emit."""

from __future__ import annotations

import pytest

from gameday.assertions.base import ExpectationContext
from gameday.assertions.event import EventExpectation, EventParams
from gameday.assertions.pod import PodExpectation, PodParams
from gameday.engine.events import Event, KubeEvent, PodObserved
from gameday.engine.observations import Observations
from gameday.injectors.kubernetes.bad_image_tag import with_tag

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
