"""The rules engine: evaluation over columnar windows, alert episodes, persistence, runners."""
