"""Realize a plan in the kernel: the only code that changes it (netlab's netlink codec, iptables-restore)."""
