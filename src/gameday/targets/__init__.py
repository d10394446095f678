"""Targets: where a scenario's system under test runs (local processes, a Kubernetes cluster)."""
