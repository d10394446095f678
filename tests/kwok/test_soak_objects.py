"""The kill -9 soak's view of the cluster (tests/soak/kubernetes.py) sees what a trial
could leave on a real API server: a changed field, an object added or taken away; and it
never shows a Secret's value."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from kubernetes import client

from gameday.testenv import KwokEnvInfo
from tests.kwok.scenarios import IMAGE, ready_pods, workload
from tests.soak.kubernetes import objects

pytestmark = pytest.mark.kwok

__all__ = ["workload"]  # the fixture, for pytest


def left(before: frozenset[str], after: frozenset[str]) -> list[str]:
    return sorted(f"+ {line}" for line in after - before) + sorted(
        f"- {line}" for line in before - after
    )


def test_a_changed_field_an_added_object_and_a_removed_one_are_seen(
    kwok: KwokEnvInfo, api: client.ApiClient, namespace: str, workload: dict[str, Any]
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    value = secrets.token_hex(8)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="planted"),
            data={"token": base64.b64encode(value.encode()).decode()},
        ),
    )
    before = objects(api, [namespace])
    assert any(line.startswith(f"deployments {namespace}/inference-server ") for line in before)
    original = workload["spec"]["template"]["spec"]["containers"][0]["image"]
    apps.patch_namespaced_deployment(
        "inference-server", namespace, [{"op": "replace", "path": IMAGE, "value": "x:broken"}]
    )
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="added"), data={"a": "1"})
    )
    core.delete_namespaced_secret("planted", namespace)
    changed = left(before, objects(api, [namespace]))
    image = f"deployments {namespace}/inference-server spec.template.spec.containers[0].image="
    assert f'+ {image}"x:broken"' in changed, changed
    assert f'- {image}"{original}"' in changed, changed
    assert f'+ configmaps {namespace}/added data.a="1"' in changed, changed
    assert any(line.startswith(f"- secrets {namespace}/planted data.token=") for line in changed)
    assert all(
        value not in line and base64.b64encode(value.encode()).decode() not in line
        for line in changed
    )
    # put back as it was: the same objects, field by field (a rollout's revision aside)
    apps.patch_namespaced_deployment(
        "inference-server", namespace, [{"op": "replace", "path": IMAGE, "value": original}]
    )
    core.delete_namespaced_config_map("added", namespace)
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="planted"),
            data={"token": base64.b64encode(value.encode()).decode()},
        ),
    )
    ready_pods(apps, namespace, "inference-server")
    assert left(before, objects(api, [namespace])) == []
