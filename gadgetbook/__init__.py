"""gadgetbook: eBPF investigations that land in pandas DataFrames."""
