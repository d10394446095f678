"""Remediation steps on the local tier: they act on the server's processes, port and cgroup."""
