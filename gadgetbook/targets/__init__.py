"""Who to trace: this host's processes and containers, and (with a cluster) pods on nodes."""
