"""Advisors: what to allow, written from what gadgets saw (NetworkPolicies from tcptracer, securityContexts
from capabilities). request.py declares them."""
