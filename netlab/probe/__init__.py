"""Probes: a forked agent that enters the lab's namespaces and sends every probe from sockets opened there."""
