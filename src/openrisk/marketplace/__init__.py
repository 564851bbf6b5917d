"""Marketplace: the global connector catalogue, reviews, and connectors installed per tenant."""
