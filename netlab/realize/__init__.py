"""Realize a plan in the kernel: the only code that changes it (pyroute2, iptables-restore)."""
