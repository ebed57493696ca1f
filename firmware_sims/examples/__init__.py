"""Example bleak scripts that read simulated (or real) meters and cuffs."""
