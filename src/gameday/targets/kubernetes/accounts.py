"""The harness's own Kubernetes account, as the rbac-denied fault withholds one of its
permissions and the grant-permission remedy gives it back: the actions the harness takes
(what each needs, how to take it as another account), the annotations a Role carries to
say what was withheld and for whom, and short-lived ServiceAccount tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes import client

from gameday.targets.kubernetes.cluster import as_json
from gameday.targets.kubernetes.objects import resource_name
from gameday.targets.kubernetes.target import KubernetesTarget
from gameday.targets.kubernetes.undo import json_pointer

__all__ = [
    "ACCOUNT",
    "ACTIONS",
    "RBAC",
    "WITHHELD",
    "HarnessAction",
    "Resource",
    "Verb",
    "account_token",
    "service_account_user",
    "withheld_action",
]

RBAC = "rbac.authorization.k8s.io"
WITHHELD = "gameday.llm-d.io/withheld"
"""The Role's annotation naming what rbac-denied left out of it: ``VERB RESOURCE``."""
ACCOUNT = "gameday.llm-d.io/account"
"""The Role's annotation naming the ServiceAccount it is bound to."""
TOKEN_SECONDS = 600
"""The shortest lifetime the API server grants a requested token."""

Resource = Literal["deployments", "pods", "events"]
Verb = Literal["get", "list", "patch"]


@dataclass(frozen=True)
class HarnessAction:
    """A request the harness makes in the workload's namespace, in a form that changes
    nothing, and the verbs deploy/rbac/harness.yaml gives the harness on its resource."""

    group: str
    plural: str
    verb: str
    held: tuple[str, ...]
    what: str
    take: Callable[[client.ApiClient, KubernetesTarget], str]
    """Take it with this client; returns the name of the object it acted on, if one."""

    @property
    def resource(self) -> str:
        return resource_name(self.group, self.plural)


def _test_image(api: client.ApiClient, target: KubernetesTarget) -> str:
    """bad-image-tag's JSON patch reduced to its ``test`` of the current image, dry run."""
    deployment = target.deployment()
    template = as_json(api, deployment.spec.template)
    index = target.serving_container(template)
    path = json_pointer("spec", "template", "spec", "containers", index, "image")
    image = template["spec"]["containers"][index]["image"]
    patch = [{"op": "test", "path": path, "value": image}]
    client.AppsV1Api(api).patch_namespaced_deployment(
        deployment.metadata.name, target.namespace, patch, dry_run="All"
    )
    return str(deployment.metadata.name)


def _read_workload(api: client.ApiClient, target: KubernetesTarget) -> str:
    name = target.spec.workload.deployment
    client.AppsV1Api(api).read_namespaced_deployment(name, target.namespace)
    return name


def _list(method: str) -> Callable[[client.ApiClient, KubernetesTarget], str]:
    def take(api: client.ApiClient, target: KubernetesTarget) -> str:
        api_class = client.AppsV1Api if method.endswith("deployment") else client.CoreV1Api
        getattr(api_class(api), method)(target.namespace, limit=1)
        return ""

    return take


_HELD = {
    "deployments": ("get", "list", "watch", "patch"),
    "pods": ("get", "list", "watch"),
    "events": ("get", "list", "watch"),
}

ACTIONS: dict[tuple[str, str], HarnessAction] = {
    (action.plural, action.verb): action
    for action in (
        HarnessAction(
            "apps",
            "deployments",
            "patch",
            _HELD["deployments"],
            "bad-image-tag's JSON patch of the serving image, its test operation only, "
            "as a dry run",
            _test_image,
        ),
        HarnessAction(
            "apps",
            "deployments",
            "get",
            _HELD["deployments"],
            "read the workload's Deployment, as the target does first",
            _read_workload,
        ),
        HarnessAction(
            "apps",
            "deployments",
            "list",
            _HELD["deployments"],
            "list the namespace's Deployments",
            _list("list_namespaced_deployment"),
        ),
        HarnessAction(
            "",
            "pods",
            "list",
            _HELD["pods"],
            "list the namespace's pods, as the pod watch begins",
            _list("list_namespaced_pod"),
        ),
        HarnessAction(
            "",
            "events",
            "list",
            _HELD["events"],
            "list the namespace's events, as the event watch begins",
            _list("list_namespaced_event"),
        ),
    )
}
"""What the fault can take as the account, by (resource, verb)."""


def withheld_action(annotation: str) -> HarnessAction | None:
    """The action whose verb a Role's WITHHELD annotation (``VERB RESOURCE``) names."""
    verb, _, resource = annotation.partition(" ")
    return next((a for a in ACTIONS.values() if a.verb == verb and a.resource == resource), None)


def service_account_user(namespace: str, name: str) -> str:
    """The user name the API server gives a ServiceAccount's tokens."""
    return f"system:serviceaccount:{namespace}:{name}"


def account_token(core: client.CoreV1Api, namespace: str, name: str) -> str:
    """A token for the ServiceAccount, as short-lived as the API server allows; the
    caller keeps it in memory for the requests it makes and nowhere else."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
    )
    answer: Any = core.create_namespaced_service_account_token(name, namespace, request)
    return str(answer.status.token)
