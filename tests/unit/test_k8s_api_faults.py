"""crd-schema-drift and rbac-denied without a cluster: the ApiRefused event, the api-error
signal it becomes and what the catalog makes of it, and the faults' pure parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from gameday.core.events import ApiRefused, FaultApplied, event_from_record
from gameday.injectors.kubernetes.crd_schema_drift import CrdSchemaDriftSpec, with_field
from gameday.injectors.kubernetes.rbac_denied import RbacDeniedSpec
from gameday.remedies.kubernetes.grant_permission import GrantPermissionRemedy
from gameday.runbooks import load_catalog
from gameday.runbooks.diagnose import Diagnoser, signals_of
from gameday.runbooks.model import GrantPermission
from gameday.targets.kubernetes.accounts import ACTIONS, withheld_action
from gameday.targets.kubernetes.refusals import as_bearer, refusal

REPO = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0

STRICT = (
    'LLMDeployment in version "v1alpha1" cannot be handled as a LLMDeployment: strict '
    'decoding error: unknown field "spec.model.name"'
)
FORBIDDEN = (
    'deployments.apps "inference-server" is forbidden: User '
    '"system:serviceaccount:ns:gameday-denied-abc123" cannot patch resource "deployments" '
    'in API group "apps" in the namespace "ns"'
)
QUOTA = (
    'pods "p" is forbidden: exceeded quota: gpu-quota, requested: requests.nvidia.com/gpu=1, '
    "used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=0"
)


def refused(status: int, message: str, t: float = 1.0, reason: str = "") -> ApiRefused:
    return ApiRefused(
        ts=T0 + t,
        scenario="s",
        status=status,
        reason=reason,
        message=message,
        verb="create",
        resource="llmdeployments.inference.llm-d.io",
        namespace="ns",
        name="llama",
        account="system:serviceaccount:ns:gameday-harness",
    )


def diagnosed(*events: ApiRefused) -> list[str]:
    diagnoser = Diagnoser(load_catalog())
    diagnoser.feed(events)
    return [d.code for d in diagnoser.ranking()]


def test_a_refusal_is_one_api_error_signal_with_status_and_the_servers_message() -> None:
    (signal,) = signals_of(refused(400, STRICT, reason="BadRequest"))
    assert (signal.kind, signal.code, signal.reason, signal.line) == (
        "api-error",
        400,
        "BadRequest",
        STRICT,
    )
    assert signal.text == (
        "API server refused create llmdeployments.inference.llm-d.io ns/llama as "
        f"system:serviceaccount:ns:gameday-harness: 400 BadRequest: {STRICT}"
    )


@pytest.mark.parametrize(
    ("status", "message", "code"),
    [
        (400, STRICT, "DEPLOYMENT001"),
        (404, "404 page not found", "DEPLOYMENT001"),
        (403, FORBIDDEN, "AUTH001"),
        (403, QUOTA, "DEPLOYMENT002"),
    ],
)
def test_each_refusal_is_diagnosed_as_its_runbook(status: int, message: str, code: str) -> None:
    assert diagnosed(refused(status, message)) == [code]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (422, STRICT),  # the message, but not the status the signature names
        (400, 'unknown field "spec.model.name"'),  # the status, not the strict decoder's words
        (404, 'namespaces "gone" not found'),  # a missing object, not an unserved resource
        (403, 'User "x" cannot patch resource'),  # no "is forbidden"
    ],
)
def test_a_refusal_needs_both_the_status_and_the_message(status: int, message: str) -> None:
    assert diagnosed(refused(status, message)) == []


def test_the_refusal_round_trips_through_the_journal_record() -> None:
    event = refused(403, FORBIDDEN, reason="Forbidden")
    record = json.loads(json.dumps(event.to_record()))
    assert record["event"] == "ApiRefused"
    assert event_from_record(record) == event


def test_refusal_reads_the_status_object_or_the_plain_answer() -> None:
    status = ApiException(status=400, reason="Bad Request")
    status.body = json.dumps(
        {"kind": "Status", "status": "Failure", "message": STRICT, "reason": "BadRequest"}
    )
    event = refusal(
        status, scenario="s", verb="create", group="inference.llm-d.io", plural="llmdeployments"
    )
    assert (event.status, event.reason, event.message) == (400, "BadRequest", STRICT)
    assert event.resource == "llmdeployments.inference.llm-d.io"
    plain = ApiException(status=404, reason="Not Found")
    plain.body = b"404 page not found\n"  # type: ignore[assignment]  # bytes, as the client sets it
    event = refusal(plain, scenario="s", verb="patch", group="apps", plural="deployments")
    assert (event.status, event.reason, event.message) == (404, "Not Found", "404 page not found")
    assert event.resource == "deployments.apps"


def test_as_bearer_keeps_the_server_and_drops_every_other_credential() -> None:
    configuration = client.Configuration(host="https://127.0.0.1:6443")
    configuration.ssl_ca_cert = "/ca.crt"
    configuration.cert_file, configuration.key_file = "/admin.crt", "/admin.key"
    configuration.api_key = {"authorization": "Bearer the-admins"}
    admin = client.ApiClient(configuration)
    account = as_bearer(admin, "the-accounts")
    made = account.configuration
    assert (made.host, made.ssl_ca_cert) == ("https://127.0.0.1:6443", "/ca.crt")
    assert (made.cert_file, made.key_file) == (None, None)
    assert made.auth_settings()["BearerToken"]["value"] == "Bearer the-accounts"
    assert admin.configuration.api_key == {"authorization": "Bearer the-admins"}  # untouched


def test_with_field_sets_a_dotted_path_in_a_copy() -> None:
    obj = {"spec": {"model": {"uri": "hf://m"}}}
    drifted = with_field(obj, "spec.model.name", "m")
    assert drifted == {"spec": {"model": {"uri": "hf://m", "name": "m"}}}
    assert obj == {"spec": {"model": {"uri": "hf://m"}}}
    assert with_field({}, "spec.a.b", 1) == {"spec": {"a": {"b": 1}}}
    with pytest.raises(ValueError, match="already set"):
        with_field(obj, "spec.model.uri", "x")
    with pytest.raises(ValueError, match="uri is not an object"):
        with_field(obj, "spec.model.uri.scheme", "x")


def test_crd_schema_drift_refuses_a_field_the_object_already_has() -> None:
    spec = CrdSchemaDriftSpec(name="drift", type="crd-schema-drift")
    assert (spec.kind, spec.drifted_field) == ("LLMDeployment", "spec.model.name")
    with pytest.raises(ValidationError, match=r"spec\.model\.uri is already set"):
        CrdSchemaDriftSpec(name="drift", type="crd-schema-drift", drifted_field="spec.model.uri")
    with pytest.raises(ValidationError, match="drifted_field"):
        CrdSchemaDriftSpec(name="drift", type="crd-schema-drift", drifted_field="metadata.x")


def test_rbac_denied_knows_only_the_actions_it_can_take() -> None:
    spec = RbacDeniedSpec(name="deny", type="rbac-denied")
    assert (spec.action.resource, spec.action.verb) == ("deployments.apps", "patch")
    with pytest.raises(ValidationError, match="no harness action patch events"):
        RbacDeniedSpec(name="deny", type="rbac-denied", resource="events", verb="patch")
    assert withheld_action("patch deployments.apps") is spec.action
    assert withheld_action("delete deployments.apps") is None


def test_the_roles_rbac_denied_makes_hold_only_what_the_harness_account_holds() -> None:
    """RBAC escalation prevention: the harness can create a Role only with permissions it
    holds itself, so each action's verbs must be deploy/rbac/harness.yaml's."""
    documents = yaml.safe_load_all((REPO / "deploy" / "rbac" / "harness.yaml").read_text())
    role = next(d for d in documents if d["kind"] == "Role")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    for action in ACTIONS.values():
        held = granted.get((action.group, action.plural), set())
        assert set(action.held) <= held, f"{action.resource}: {action.held} beyond {held}"
        assert action.verb in action.held
    # and what the two faults themselves create, and the remedy patches
    for needed, verbs in {
        ("inference.llm-d.io", "llmdeployments"): {"create", "delete"},
        ("", "serviceaccounts"): {"create", "delete"},
        ("", "serviceaccounts/token"): {"create"},
        ("rbac.authorization.k8s.io", "roles"): {"create", "delete", "list", "patch"},
        ("rbac.authorization.k8s.io", "rolebindings"): {"create", "delete"},
    }.items():
        assert verbs <= granted.get(needed, set()), needed


def test_grant_permission_gives_back_what_was_refused_not_a_fixed_grant() -> None:
    (step,) = load_catalog().get("AUTH001").remediation
    assert isinstance(step, GrantPermission)
    assert GrantPermissionRemedy.cannot(step) is None
    fixed = GrantPermission(kind="grant-permission", resources=("pods",), verbs=("get",))
    assert "it grants a fixed set (get on pods)" in (GrantPermissionRemedy.cannot(fixed) or "")
    with pytest.raises(ValidationError, match="resources and verbs, or neither"):
        GrantPermission(kind="grant-permission", resources=("pods",))


def test_a_fault_applied_after_the_refusal_still_counts_it() -> None:
    """The refusal happens while the fault is applied, before FaultApplied is emitted: it
    falls inside the fault window, which begins when applying began."""
    diagnoser = Diagnoser(load_catalog())
    applied = FaultApplied(
        ts=T0 + 2,
        scenario="s",
        fault="f",
        fault_type="rbac-denied",
        description="",
        started=T0 + 0.5,
        offset=0.5,
    )
    diagnoser.feed([refused(403, FORBIDDEN, t=1.0), applied])
    assert [d.code for d in diagnoser.fault_ranking() or []] == ["AUTH001"]
