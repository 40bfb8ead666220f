"""Workloads: containers in pods (processes in the pod's namespaces) and the built-in echo server."""
