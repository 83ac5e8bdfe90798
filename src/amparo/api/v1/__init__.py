"""Amparo's own API, version 1 (``/v1/...``)."""

from fastapi import APIRouter

from amparo.api.v1 import (
    actions,
    banks,
    evidence,
    exchanges,
    feeds,
    hotline,
    matching,
    proposals,
    reports,
    review,
    url_reports,
)

router = APIRouter(prefix="/v1")
router.include_router(matching.router)
router.include_router(banks.router)
router.include_router(actions.router)
router.include_router(review.router)
router.include_router(evidence.router)
router.include_router(reports.router)
router.include_router(exchanges.router)
router.include_router(feeds.router)
router.include_router(proposals.router)
router.include_router(url_reports.router)
router.include_router(hotline.router)

__all__ = ["router"]
