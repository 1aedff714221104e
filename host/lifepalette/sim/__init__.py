"""Cove simulator: scenario timelines, synthetic physiology at badge units, and cohorts with known truth."""
