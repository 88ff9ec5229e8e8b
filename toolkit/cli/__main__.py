"""`python -m edgecls.cli` runs the same command as `edgecls`."""

from . import main

main()
