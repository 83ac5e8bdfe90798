"""The reviewer web UI at ``/review`` (server-rendered; owned by the review work)."""

from amparo.web.routes import router

__all__ = ["router"]
