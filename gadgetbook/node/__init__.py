"""What runs where the kernel is: one gadget run on this host."""
