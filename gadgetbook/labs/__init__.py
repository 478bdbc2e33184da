"""Small real workloads for notebooks and labs: busybox containers under podman, on a network of their own."""
