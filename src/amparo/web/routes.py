"""Routes of the reviewer web UI."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/review", include_in_schema=False)
