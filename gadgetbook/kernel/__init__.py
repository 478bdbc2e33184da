"""The kernel side: libbpf binding, BTF reading, the loader and the ring-buffer reader."""
