"""Names for stack addresses: kernel symbols from /proc/kallsyms, user symbols from the mapped ELF files."""
