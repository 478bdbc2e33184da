"""The node pod's server: the jupyter-server extension that runs gadgets on its host for a client."""
