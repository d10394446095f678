"""Observers that turn what a target shows (alerts, Kubernetes objects, GPUs) into events."""
