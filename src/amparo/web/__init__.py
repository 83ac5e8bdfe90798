"""The reviewer web UI at ``/review`` (server-rendered; owned by the review work)."""

from amparo.web.routes import SECURITY_HEADERS, router

__all__ = ["SECURITY_HEADERS", "router"]
