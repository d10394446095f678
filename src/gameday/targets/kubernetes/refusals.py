"""Requests the API server refuses, as events; who is asking; asking as someone else.

The faults that make the API server say no (crd-schema-drift, rbac-denied) report the
refusal as an :class:`~gameday.core.events.ApiRefused` with the API server's own
status and message, and the user name it authenticated. Credentials never leave memory.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from gameday.core.events import ApiRefused
from gameday.targets.kubernetes.objects import resource_name

__all__ = ["as_bearer", "refusal", "whoami"]


def refusal(
    error: ApiException,
    *,
    scenario: str,
    verb: str,
    group: str,
    plural: str,
    namespace: str = "",
    name: str = "",
    account: str = "",
) -> ApiRefused:
    """The event for a refused request: the Status object's reason and message when the
    API server sent one, else its plain answer (``404 page not found`` for a path it
    does not serve)."""
    body = error.body.decode() if isinstance(error.body, bytes) else str(error.body or "")
    reason, message = str(error.reason or ""), body.strip()
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        reason = str(status.get("reason") or reason)
        message = str(status.get("message") or message)
    return ApiRefused(
        scenario=scenario,
        status=int(error.status or 0),
        reason=reason,
        message=message,
        verb=verb,
        resource=resource_name(group, plural),
        namespace=namespace,
        name=name,
        account=account,
    )


def whoami(api: client.ApiClient) -> str:
    """The user name the API server authenticates this client as (a SelfSubjectReview,
    which every authenticated user may make); empty if it will not say."""
    review = client.V1SelfSubjectReview(
        api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
    )
    try:
        answer: Any = client.AuthenticationV1Api(api).create_self_subject_review(review)
    except ApiException:
        return ""
    return str(answer.status.user_info.username or "")


def as_bearer(api: client.ApiClient, token: str) -> client.ApiClient:
    """A client for the same API server (address, CA, TLS settings) that authenticates
    with ``token`` alone: no client certificate, no other credential of ``api``'s."""
    configuration = copy.deepcopy(api.configuration)
    configuration.cert_file = None
    configuration.key_file = None
    configuration.username = None
    configuration.password = None
    configuration.refresh_api_key_hook = None
    configuration.api_key_prefix = {}
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)
