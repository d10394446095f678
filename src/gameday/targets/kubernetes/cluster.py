"""Reaching a cluster from a kubeconfig path and a context name, and nothing more.

Undo records keep only these two strings, so ``gameday cleanup`` can reach the cluster
again after a crash while no credential is ever written to a journal or a report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from gameday.errors import ComponentUnreachable

__all__ = ["api_client", "as_json", "current_context", "kubeconfig_path", "object_path", "rest"]


def kubeconfig_path(given: str | None) -> str:
    """The kubeconfig to read: the one given, else $KUBECONFIG's first, else ~/.kube/config."""
    if given:
        return str(Path(given).expanduser())
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return first or str(Path("~/.kube/config").expanduser())


def current_context(kubeconfig: str) -> str:
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as error:
        raise ComponentUnreachable(f"cannot read kubeconfig {kubeconfig}: {error}") from None
    if not active:
        raise ComponentUnreachable(f"kubeconfig {kubeconfig} has no current context")
    return str(active["name"])


def api_client(kubeconfig: str, context: str) -> client.ApiClient:
    try:
        made: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
        return made
    except (ConfigException, OSError) as error:
        raise ComponentUnreachable(
            f"cannot use context {context!r} of kubeconfig {kubeconfig}: {error}"
        ) from None


def as_json(api: client.ApiClient, obj: object) -> Any:
    """An API object as the plain JSON the API server stores (camelCase keys)."""
    return api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def object_path(api_version: str, plural: str, namespace: str, name: str) -> str:
    """The REST path of a namespaced object: /api/v1/... for the core group, else /apis/..."""
    root = "/api" if "/" not in api_version else "/apis"
    return f"{root}/{api_version}/namespaces/{namespace}/{plural}/{name}"


def rest(
    api: client.ApiClient,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, dict[str, Any]]:
    """One request to the API server on any resource's path (the undo records serve every
    kind this way); the status and the JSON answer, errors included."""
    request = api.param_serialize(
        method=method,
        resource_path=path,
        header_params={"Accept": "application/json", "Content-Type": content_type},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request)
    response.read()  # type: ignore[no-untyped-call]
    raw: bytes = response.data or b""
    try:
        data: dict[str, Any] = json.loads(raw) if raw else {}
    except ValueError:  # "404 page not found": a path the server does not serve, as text
        data = {"message": raw.decode(errors="replace").strip()}
    return response.status, data
