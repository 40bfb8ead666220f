"""Probes: children that enter a namespace, then import scapy."""
