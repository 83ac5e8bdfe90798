"""v1: evidence routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["v1: evidence"])
