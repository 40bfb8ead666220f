"""Pure model: topology, loader, addressing, naming. No kernel access here."""
