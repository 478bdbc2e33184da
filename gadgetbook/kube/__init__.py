"""Kubernetes access: one place that talks to the API server (client, errors, port-forward, deploy)."""
