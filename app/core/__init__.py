"""Shared mechanics. Nothing in here imports a domain: domains plug into these pieces."""
