"""The ``kubernetes`` target: a workload on a cluster (kwok, kind or a real one)."""
