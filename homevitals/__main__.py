"""`python -m homevitals` is the `homevitals` command."""

from homevitals.cli import main

main()
