"""Advisors: policies written from what gadgets saw (network policies from tcptracer)."""
