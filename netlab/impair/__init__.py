"""Impairments: rate, delay and loss on a lab's interfaces, declared in the topology or set at run time."""
