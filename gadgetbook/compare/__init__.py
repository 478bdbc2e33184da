"""Comparing recordings and investigations: what each workload does that it did not before, and the reverse."""
