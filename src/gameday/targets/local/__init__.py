"""The local tier: the server as a supervised process, a private Prometheus and Alertmanager."""
