"""Remedies: a runbook's remediation steps as code, one module per step kind and tier."""
