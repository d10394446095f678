"""grant-permission (AUTH001): give an account back the permission the API server refused.

The permission is the one the rbac-denied fault withheld: each Role in the workload's
namespace that carries its annotation (``gameday.llm-d.io/withheld: VERB RESOURCE``)
gets a rule with that verb, through a JSON patch that tests the Role's rules first.
Then the refused action is taken again as the account the Role is bound to (a fresh
short-lived token, in memory only); the step is done only once the API server allows
it. The undo record puts the rules back as they were, only if they are still the ones
the step set. A step that names a fixed grant (resources and verbs) is not this one's.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.core.errors import InjectionError
from gameday.remedies.base import Remedy, remedies
from gameday.runbooks.model import GrantPermission
from gameday.targets.kubernetes.accounts import (
    ACCOUNT,
    WITHHELD,
    HarnessAction,
    account_token,
    service_account_user,
    withheld_action,
)
from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.refusals import as_bearer
from gameday.targets.kubernetes.target import KubernetesTarget

__all__ = ["GrantPermissionRemedy"]

ALLOWED_WITHIN = 10.0
"""Seconds the RBAC authorizer may take to see the widened Role (it reads Roles through
an informer: a cache no client can watch, so the action is retried until allowed)."""


@remedies.register("kubernetes/grant-permission")
class GrantPermissionRemedy(Remedy[GrantPermission, KubernetesTarget]):
    kind = "grant-permission"
    summary = (
        "Give the refused account's Role back the verb the API server refused, and retry "
        "the action as that account."
    )

    @classmethod
    def describe(cls, action: GrantPermission) -> str:
        return (
            "add the refused verb to the Role the refused account is bound to (JSON patch "
            "that tests its rules first), then take the refused action again as the account"
        )

    @classmethod
    def cannot(cls, action: GrantPermission) -> str | None:
        if action.resources:
            verbs, resources = ", ".join(action.verbs), ", ".join(action.resources)
            return (
                f"it grants a fixed set ({verbs} on {resources}); on Kubernetes this step "
                "gives back what the API server refused"
            )
        return None

    def apply(self) -> dict[str, str]:
        target = self.target
        rbac = client.RbacAuthorizationV1Api(target.require_api())
        listed: list[Any] = rbac.list_namespaced_role(target.namespace).items
        roles = [role for role in listed if WITHHELD in (role.metadata.annotations or {})]
        if not roles:
            raise InjectionError(
                f"no Role in {target.namespace} says what it withholds ({WITHHELD}): nothing "
                "refused here for this step to give back"
            )
        details: dict[str, str] = {}
        for role in roles:
            details.update(self._grant(rbac, role))
        return details

    def _grant(self, rbac: client.RbacAuthorizationV1Api, role: Any) -> dict[str, str]:
        target = self.target
        name, annotations = role.metadata.name, role.metadata.annotations
        action = withheld_action(annotations[WITHHELD])
        if action is None:
            raise InjectionError(f"role {name}: no harness action {annotations[WITHHELD]!r}")
        original: list[dict[str, Any]] = as_json(target.require_api(), role).get("rules") or []
        rule = {"apiGroups": [action.group], "resources": [action.plural], "verbs": [action.verb]}
        granted = [*original, rule]
        self.ctx.changes.record(
            target.restore_field(
                "roles",
                name,
                "/rules",
                original,
                granted,
                api_version="rbac.authorization.k8s.io/v1",
            )
        )
        patch = [
            {"op": "test", "path": "/rules", "value": original}
            if original
            else {"op": "add", "path": "/rules", "value": []},
            {"op": "replace", "path": "/rules", "value": granted},
        ]
        rbac.patch_namespaced_role(name, target.namespace, patch)
        account = annotations.get(ACCOUNT, name)
        attempts = self._retry(action, account)
        user = service_account_user(target.namespace, account)
        return {
            f"role {name}": f"+ {action.verb} on {action.resource}",
            "retried": f"as {user}: {action.what}: allowed (attempt {attempts})",
        }

    def _retry(self, action: HarnessAction, account: str) -> int:
        """Take the action as ``account`` until the API server allows it; the attempt."""
        target = self.target
        api = target.require_api()
        token = account_token(client.CoreV1Api(api), target.namespace, account)
        as_account = as_bearer(api, token)
        deadline, pause, attempt = time.monotonic() + ALLOWED_WITHIN, 0.05, 0
        try:
            while True:
                attempt += 1
                try:
                    action.take(as_account, target)
                    return attempt
                except ApiException as error:
                    if error.status != 403 or time.monotonic() > deadline:
                        raise InjectionError(
                            f"as {account}, {action.what} still refused after the grant: "
                            f"{error.status} {error.reason}"
                        ) from None
                if self.ctx.stop.wait(pause):  # the authorizer's cache: no watch to follow
                    raise InjectionError("interrupted while retrying the refused action")
                pause = min(pause * 2, 1.0)
        finally:
            as_account.close()  # type: ignore[no-untyped-call]
