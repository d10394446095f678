"""Expectation kinds: one module each, registered by name."""
