"""``python -m streamify`` runs the command line."""

from .cli import main

main()
