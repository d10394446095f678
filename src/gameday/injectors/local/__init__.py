"""Faults for the local tier: they act on processes, ports, cgroups and files of this machine."""
