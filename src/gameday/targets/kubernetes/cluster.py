"""Reaching a cluster from a kubeconfig path and a context name, and nothing more.

Undo records keep only these two strings, so ``gameday cleanup`` can reach the cluster
again after a crash while no credential is ever written to a journal or a report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KubeConfigLoader

from gameday.core.errors import ComponentUnreachable, InputError
from gameday.core.inputs import read_input_text
from gameday.core.redact import remember_secret, remember_secrets_in
from gameday.core.yamlfile import load_yaml_documents

__all__ = [
    "api_client",
    "as_json",
    "current_context",
    "kubeconfig_path",
    "object_path",
    "read_kubeconfig",
    "rest",
]


def kubeconfig_path(given: str | None) -> str:
    """The kubeconfig to read: the one given, else $KUBECONFIG's first, else ~/.kube/config."""
    if given:
        return str(Path(given).expanduser())
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return first or str(Path("~/.kube/config").expanduser())


def read_kubeconfig(kubeconfig: str, context: str | None = None) -> KubeConfigLoader:
    """The kubeconfig, read through the project's one input path (size limit, UTF-8,
    bounded YAML, located errors: exit 2) and its credentials remembered as secrets, so
    whatever an API error or a log line echoes of them is masked. A kubeconfig that does
    not exist means no cluster is configured: the cluster is unreachable (exit 3)."""
    path = Path(kubeconfig)
    if not path.is_file():
        raise ComponentUnreachable(f"cannot read kubeconfig {kubeconfig}: no such file")
    documents = load_yaml_documents(read_input_text(path, "kubeconfig"), kubeconfig)
    data = documents[0] if len(documents) == 1 else None
    if not isinstance(data, dict):
        raise InputError(
            f"{kubeconfig}: a kubeconfig is one YAML mapping (apiVersion: v1, kind: Config)"
        )
    plain = _plain(data)
    remember_secrets_in(plain)
    try:
        return KubeConfigLoader(  # type: ignore[no-untyped-call]
            config_dict=plain,
            active_context=context,
            config_base_path=str(path.resolve().parent),  # its relative file names
        )
    except (ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        raise InputError(f"{kubeconfig}: not a usable kubeconfig: {error}") from None


def _plain(value: Any) -> Any:
    """YAML's round-trip nodes as plain dicts, lists and scalars (a tagged key as text)."""
    if isinstance(value, dict):
        return {
            str(k) if not isinstance(k, (str, int, float, bool)) else k: _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return type(value)(value) if value is not None else None  # ScalarFloat -> float
    return str(value)


def current_context(kubeconfig: str) -> str:
    loader = read_kubeconfig(kubeconfig)
    try:
        active = loader.current_context
    except (ConfigException, KeyError, TypeError, AttributeError) as error:
        raise ComponentUnreachable(f"cannot read kubeconfig {kubeconfig}: {error}") from None
    if not active:
        raise ComponentUnreachable(f"kubeconfig {kubeconfig} has no current context")
    return str(active["name"])


def api_client(kubeconfig: str, context: str) -> client.ApiClient:
    configuration = client.Configuration()
    try:
        read_kubeconfig(kubeconfig, context).load_and_set(configuration)  # type: ignore[no-untyped-call]
    except (ConfigException, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        # the client's loader fails on a malformed entry with whatever it tripped over
        raise InputError(
            f"{kubeconfig}: cannot use its context {context!r}: {error or type(error).__name__}"
        ) from None
    for value in (*configuration.api_key.values(), configuration.password):
        remember_secret(value)  # what an exec plugin or token file gave, too
        if isinstance(value, str) and value.lower().startswith("bearer "):
            remember_secret(value[7:])
    return client.ApiClient(configuration)


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
