"""firmware_sims."""
