"""Programs of one's own: CO-RE BPF C (%%bpf) compiled here against a kernel's BTF, and bcc programs (%%bcc)."""
