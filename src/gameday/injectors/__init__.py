"""Faults: one module each, registered by type name."""
