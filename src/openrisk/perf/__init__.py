"""Performance tooling (SPEC §8): ``openrisk loadtest`` (Locust scenarios against a real server
subprocess, with reports) and ``openrisk bench`` (cache off vs on, same data, one run)."""
