"""The `homevitals` command line: the composition root that gathers each package's commands."""
