"""Routes compatible with HMA (Hasher-Matcher-Actioner / Open Media Match): same paths,
parameters and response shapes, so an HMA client works against Amparo unchanged. The
differences (a key is required, bank names, ratios) are listed in docs/api.md."""

from fastapi import APIRouter

from amparo.api.hma import curation, hashing, matching

router = APIRouter()
router.include_router(hashing.router)
router.include_router(matching.router)
router.include_router(curation.router)

__all__ = ["router"]
