"""The client side of a run: sources, the run handle, counters."""
