"""Risk methodology: the tenant's risk model (levels, bands, factors, appetite, review cadence,
acceptance rules) and re-scoring the register when it changes."""
