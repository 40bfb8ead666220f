"""A lab's lifecycle over the Kernel protocol: up (create, repair, roll back), down and status."""
