"""rbac-denied (AUTH001): the harness's own action, taken as an account missing one verb.

The fault creates, in the workload's namespace, a ServiceAccount, a Role holding the
harness's own rule for one resource (as deploy/rbac/harness.yaml grants it) minus one
verb (default: ``patch`` on ``deployments``), and a RoleBinding; it asks for a
short-lived token for the account (TokenRequest) and takes, as that account, the action
the harness would take with the verb: for ``patch deployments``, the JSON patch
bad-image-tag sends, reduced to its ``test`` operation and sent as a dry run, so it
changes nothing even where it is allowed. The RBAC authorizer refuses it: ``403
Forbidden: deployments.apps "inference-server" is forbidden: User
"system:serviceaccount:NS:gameday-denied-..." cannot patch resource "deployments" in
API group "apps" in the namespace "NS"``. The refusal is emitted as an ``ApiRefused``
event and is the finding; the workload is not touched.

Everything here is the real API server (authentication, the RBAC authorizer) on every
tier. The token lives in memory only, for the one request: never journaled or
reported. The account, the Role and the RoleBinding are each recorded for deletion
before they are created; deleting the account invalidates the token at once. The Role
says which verb it withholds (an annotation), so the grant-permission remedy can give
it back. RBAC escalation prevention lets the harness create the Role only with
permissions it holds itself, which the Role never exceeds.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import model_validator

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import FaultSpec
from gameday.targets.kubernetes.accounts import (
    ACCOUNT,
    ACTIONS,
    RBAC,
    WITHHELD,
    HarnessAction,
    Resource,
    Verb,
    account_token,
    service_account_user,
)
from gameday.targets.kubernetes.refusals import as_bearer, refusal
from gameday.targets.kubernetes.target import KubernetesTarget

__all__ = [
    "RbacDenied",
    "RbacDeniedSpec",
]


class RbacDeniedSpec(FaultSpec):
    resource: Resource = "deployments"
    """The resource of the action: deployments, pods or events."""
    verb: Verb = "patch"
    """The verb the account's Role leaves out, and the action taken with it: patch (the
    test operation of bad-image-tag's patch), get (deployments) or list."""

    @model_validator(mode="after")
    def _known_action(self) -> RbacDeniedSpec:
        if (self.resource, self.verb) not in ACTIONS:
            known = ", ".join(f"{verb} {plural}" for plural, verb in ACTIONS)
            raise ValueError(f"no harness action {self.verb} {self.resource} (known: {known})")
        return self

    @property
    def action(self) -> HarnessAction:
        return ACTIONS[(self.resource, self.verb)]


@faults.register("rbac-denied")
class RbacDenied(Injector[RbacDeniedSpec, KubernetesTarget]):
    Params = RbacDeniedSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "AUTH001"
    summary = (
        "Take the harness's own action as a ServiceAccount whose Role lacks its verb "
        "(the RBAC authorizer answers 403 Forbidden)."
    )

    @classmethod
    def describe(cls, spec: RbacDeniedSpec) -> str:
        action = spec.action
        kept = [v for v in action.held if v != action.verb]
        return (
            f"create a ServiceAccount, a Role granting {', '.join(kept)} on {action.resource} "
            f"(the harness's rule without {action.verb}) and a RoleBinding; as that account "
            f"(a short-lived token, in memory only) {action.what}; the API server's 403 "
            "is the finding; revert: delete the three"
        )

    def _record(self, group: str, plural: str, name: str) -> None:
        version = f"{group}/v1" if group else "v1"
        self.ctx.changes.record(self.target.delete_created(plural, name, version))

    def _create(self, what: str, create: Callable[[], Any]) -> None:
        try:
            create()
        except ApiException as error:
            hint = ""
            if error.status == 403 and what == "role":
                hint = (
                    " (RBAC lets the harness create a Role only with permissions it holds "
                    "itself: see deploy/rbac/harness.yaml)"
                )
            raise InjectionError(
                f"cannot create the {what}: {error.status} {error.reason}{hint}"
            ) from None

    def apply(self) -> dict[str, str]:
        target, action = self.target, self.spec.action
        api = target.require_api()
        core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
        namespace = target.namespace
        name = f"gameday-denied-{secrets.token_hex(3)}"
        user = service_account_user(namespace, name)
        kept = [verb for verb in action.held if verb != action.verb]
        metadata = client.V1ObjectMeta(name=name, labels=target.created_labels())

        self._record("", "serviceaccounts", name)
        account = client.V1ServiceAccount(metadata=metadata)
        self._create(
            "service account", lambda: core.create_namespaced_service_account(namespace, account)
        )
        rule = client.V1PolicyRule(api_groups=[action.group], resources=[action.plural], verbs=kept)
        role = client.V1Role(
            metadata=client.V1ObjectMeta(
                name=name,
                labels=target.created_labels(),
                annotations={WITHHELD: f"{action.verb} {action.resource}", ACCOUNT: name},
            ),
            rules=[rule] if kept else [],
        )
        self._record(RBAC, "roles", name)
        self._create("role", lambda: rbac.create_namespaced_role(namespace, role))
        binding = client.V1RoleBinding(
            metadata=metadata,
            role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name=name),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=name, namespace=namespace)],
        )
        self._record(RBAC, "rolebindings", name)
        self._create(
            "role binding", lambda: rbac.create_namespaced_role_binding(namespace, binding)
        )

        as_account = as_bearer(api, account_token(core, namespace, name))
        try:
            acted_on = action.take(as_account, target)
        except ApiException as error:
            refused = refusal(
                error,
                scenario=self.ctx.scenario,
                verb=action.verb,
                group=action.group,
                plural=action.plural,
                namespace=namespace,
                name=target.spec.workload.deployment if action.verb != "list" else "",
                account=user,
            )
        else:
            raise InjectionError(
                f"as {user}, {action.what} was allowed ({acted_on or action.resource}): the "
                f"RBAC authorizer did not refuse {action.verb}"
            )
        finally:
            as_account.close()  # type: ignore[no-untyped-call]
        answer = f"{refused.status} {refused.reason}: {refused.message}"
        if refused.status != 403:
            raise InjectionError(f"as {user}, {action.what}: {answer}")
        self.ctx.bus.emit(refused)
        return {
            "account": user,
            "role": f"{namespace}/{name}: {', '.join(kept) or 'nothing'} on {action.resource}",
            "withheld": f"{action.verb} {action.resource}",
            "action": action.what,
            "refused": answer,
        }
