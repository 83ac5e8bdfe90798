"""Placeholder: filled by the part's owner (see amparo.hotline.service)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
