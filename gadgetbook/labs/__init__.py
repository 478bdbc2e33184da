"""For notebooks and labs: small real workloads (busybox containers under podman, on a network of their own)
and checks that tell a student whether an answer answers the question."""
