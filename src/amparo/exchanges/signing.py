"""Placeholder: canonical signed form of feed pages and opinions (federation work)."""
