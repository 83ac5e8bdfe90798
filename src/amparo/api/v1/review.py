"""v1: review routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["v1: review"])
