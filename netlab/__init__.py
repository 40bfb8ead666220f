"""netlab: real network-namespace labs of the Kubernetes network model."""

__version__ = "0.1.0"
