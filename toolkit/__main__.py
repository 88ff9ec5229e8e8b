"""`python -m edgecls` runs the same command as `edgecls`."""

from .cli import main

main()
