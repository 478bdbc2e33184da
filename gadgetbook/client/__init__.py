"""The client side of a cluster run: fan-out to node pods, their batches merged and named by pod."""
