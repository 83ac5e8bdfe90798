"""Placeholder: filled in by the exchange work."""
