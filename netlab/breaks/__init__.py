"""Learn by breaking: a catalogue of real faults (``netlab break``) and a quiz (``netlab quiz``).

``catalogue`` is plain data and pure functions (import it freely); ``changes``
builds each fault's kernel operations from the lab's plan; ``run`` makes them.
"""
