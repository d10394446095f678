"""Remediation steps on the Kubernetes tiers: they change objects through the API server."""
