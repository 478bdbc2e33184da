"""Helpers the tests share: real workloads, real containers, leftover checks."""
