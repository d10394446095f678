"""crd-schema-drift (DEPLOYMENT001): apply an object its installed CRD has no field for.

Like an operator whose CRDs are older than its manifests, the fault creates, in the
workload's namespace, an object of a custom resource (default: an LLMDeployment of
``inference.llm-d.io/v1alpha1``) carrying a field the CRD's schema does not know
(default ``spec.model.name``), with server-side field validation ``Strict`` as
``kubectl apply --validate=strict`` asks for it. The API server refuses it: ``400
BadRequest ... strict decoding error: unknown field "spec.model.name"``. A kind the
cluster does not serve at all (the CRD missing) is the same runbook code: the API
server answers ``404 page not found``. Either refusal is emitted as an ``ApiRefused``
event, with the API server's own message, and is the finding; nothing else changes.

Everything here is the real API server on every tier. On the kwok tier the CRD is
testenv/manifests/llmdeployment-crd.yaml, a small stand-in for llm-d's. The object is
recorded for deletion before it is created: should the API server ever accept it (the
CRD knows the field after all), it goes again and the fault says nothing drifted.
"""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import Field, model_validator

from gameday.core.errors import InjectionError
from gameday.injectors.base import Injector, faults
from gameday.scenario.model import NAME_PATTERN, FaultSpec
from gameday.targets.kubernetes.objects import resource_name
from gameday.targets.kubernetes.refusals import refusal, whoami
from gameday.targets.kubernetes.target import KubernetesTarget

__all__ = ["CrdSchemaDrift", "CrdSchemaDriftSpec", "with_field"]

FIELD_PATH = r"^spec(\.[A-Za-z_][A-Za-z0-9_-]*)+$"
UNKNOWN_FIELD = re.compile(r'unknown field "([^"]+)"')
NOT_SERVED = "404 page not found"
"""What the API server answers for a resource path it does not serve (no such CRD)."""


def with_field(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with the dotted ``path`` (``spec.model.name``) set to ``value``,
    creating the objects on the way."""
    result = copy.deepcopy(obj)
    *parents, leaf = path.split(".")
    node = result
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"{path}: {key} is not an object")
    if leaf in node:
        raise ValueError(f"{path} is already set in the object")
    node[leaf] = value
    return result


class CrdSchemaDriftSpec(FaultSpec):
    group: str = Field(default="inference.llm-d.io", pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
    """The custom resource's API group."""
    version: str = Field(default="v1alpha1", pattern=r"^v[0-9]+((alpha|beta)[0-9]+)?$")
    plural: str = Field(default="llmdeployments", pattern=NAME_PATTERN)
    kind: str = Field(default="LLMDeployment", pattern=r"^[A-Z][A-Za-z0-9]*$")
    object_name: str = Field(default="", pattern=r"^$|" + NAME_PATTERN, max_length=63)
    """The object's name; default ``gameday-drift-<random>``."""
    object_spec: dict[str, Any] = Field(
        default_factory=lambda: {
            "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "replicas": 1,
        }
    )
    """The object's ``spec`` as the installed schema knows it."""
    drifted_field: str = Field(default="spec.model.name", pattern=FIELD_PATH)
    """The field newer manifests set and the installed CRD does not know."""
    drifted_value: str = "meta-llama/Llama-3.1-8B-Instruct"

    @model_validator(mode="after")
    def _field_fits(self) -> CrdSchemaDriftSpec:
        with_field({"spec": self.object_spec}, self.drifted_field, self.drifted_value)
        return self


@faults.register("crd-schema-drift")
class CrdSchemaDrift(Injector[CrdSchemaDriftSpec, KubernetesTarget]):
    Params = CrdSchemaDriftSpec
    target_kinds = frozenset({"kubernetes"})
    runbook = "DEPLOYMENT001"
    summary = (
        "Create a custom resource with a field its installed CRD does not know "
        "(the API server refuses it: strict decoding error)."
    )

    @classmethod
    def describe(cls, spec: CrdSchemaDriftSpec) -> str:
        return (
            f"create an object of kind {spec.kind} "
            f"({resource_name(spec.group, spec.plural)}/{spec.version}) "
            f"in the workload's namespace with {spec.drifted_field} set, under strict field "
            "validation; the API server's refusal is the finding; revert: delete the object, "
            "should it have been accepted"
        )

    def apply(self) -> dict[str, str]:
        target, spec = self.target, self.spec
        api = target.require_api()
        name = spec.object_name or f"gameday-drift-{secrets.token_hex(3)}"
        body = with_field(
            {
                "apiVersion": f"{spec.group}/{spec.version}",
                "kind": spec.kind,
                "metadata": {
                    "name": name,
                    "labels": target.created_labels(),
                },
                "spec": spec.object_spec,
            },
            spec.drifted_field,
            spec.drifted_value,
        )
        where = f"{spec.kind} {target.namespace}/{name}"
        account = whoami(api)
        api_version = f"{spec.group}/{spec.version}"
        self.ctx.changes.record(target.delete_created(spec.plural, name, api_version))
        try:
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                spec.group,
                spec.version,
                target.namespace,
                spec.plural,
                body,
                field_validation="Strict",
            )
        except ApiException as error:
            refused = refusal(
                error,
                scenario=self.ctx.scenario,
                verb="create",
                group=spec.group,
                plural=spec.plural,
                namespace=target.namespace,
                name=name,
                account=account,
            )
            self.ctx.bus.emit(refused)
            answer = f"{refused.status} {refused.reason}: {refused.message}"
            unknown = UNKNOWN_FIELD.findall(refused.message)
            if refused.status == 400 and unknown:
                return {
                    "object": where,
                    "refused": answer,
                    "unknown fields": ", ".join(unknown),
                    "as": account or "(unknown)",
                }
            if refused.status == 404 and NOT_SERVED in refused.message:
                return {
                    "object": where,
                    "refused": answer,
                    "served": f"the API server serves no {resource_name(spec.group, spec.plural)}"
                    f"/{spec.version}: the CRD is missing",
                    "as": account or "(unknown)",
                }
            raise InjectionError(f"cannot create {where}: {answer}") from None
        raise InjectionError(
            f"the API server accepted {where} with {spec.drifted_field}: the installed CRD "
            "knows the field, nothing has drifted (the object is deleted again)"
        )
