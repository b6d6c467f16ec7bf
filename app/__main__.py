"""``python -m app`` is the ``psl`` command (used to start workers with this interpreter)."""

from app.cli import main

main()
