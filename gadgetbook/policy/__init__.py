"""Policies checked against recorded traffic: what Kubernetes NetworkPolicies (and, with traceloop recordings,
seccomp profiles) would have refused of what the workloads really did."""
