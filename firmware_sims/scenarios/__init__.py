"""Shipped scenario files (TOML), read by `firmware_sims.scenario_files`."""
