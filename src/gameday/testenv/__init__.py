"""The kwok tier: a real Kubernetes control plane with simulated kubelets (see cluster.py)."""

from gameday.testenv.binaries import BINARIES, ensure_binaries
from gameday.testenv.cluster import KwokEnv, KwokEnvConfig, KwokEnvInfo

__all__ = ["BINARIES", "KwokEnv", "KwokEnvConfig", "KwokEnvInfo", "ensure_binaries"]
