"""``python -m netlab`` runs the CLI."""

from netlab.launch import main

main()
