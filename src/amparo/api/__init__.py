"""The HTTP API: Amparo's own v1 routes, HMA-compatible routes, keys, limits and metrics."""

from amparo.api.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]
