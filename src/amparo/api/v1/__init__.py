"""Amparo's own API, version 1 (``/v1/...``)."""

from fastapi import APIRouter

from amparo.api.v1 import banks, matching

router = APIRouter(prefix="/v1")
router.include_router(matching.router)
router.include_router(banks.router)

__all__ = ["router"]
