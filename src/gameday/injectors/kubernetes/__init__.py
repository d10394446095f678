"""Faults for the Kubernetes tiers: they change objects through the API server."""
