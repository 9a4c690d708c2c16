"""``python -m skyrig``: the same as the ``skyrig`` command."""

from skyrig.cli import main

main()
