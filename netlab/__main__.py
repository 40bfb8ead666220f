"""``python -m netlab`` runs the CLI."""

from netlab.cli import main

main()
