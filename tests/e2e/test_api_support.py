"""Fixtures shared by the API tests (imported by test_api*.py; holds no tests itself)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import skimage.data
from fastapi.testclient import TestClient
from PIL import Image

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings
from amparo.keys import KeyService

# Starlette's test client warns that it will move to another httpx package; not our concern.
QUIET = pytest.mark.filterwarnings("ignore::DeprecationWarning")
warnings.filterwarnings("ignore", message=".*httpx2.*")


def jpeg(pixels: np.ndarray, size: tuple[int, int] | None = None, quality: int = 90) -> bytes:
    image = Image.fromarray(pixels)
    if size is not None:
        image = image.resize(size)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def photo(name: str = "astronaut") -> bytes:
    return jpeg(getattr(skimage.data, name)())


def transformed(name: str = "astronaut") -> bytes:
    """A resized, recompressed copy: what a re-upload of a known image looks like."""
    pixels = getattr(skimage.data, name)()
    h, w = pixels.shape[:2]
    return jpeg(pixels, (w * 3 // 5, h * 3 // 5), quality=55)


@dataclass
class Api:
    client: TestClient
    settings: Settings
    keys: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def make_keys(settings: Settings) -> dict[str, str]:
    with Amparo(settings) as amparo:
        service = KeyService(amparo.store)
        return {
            scope: service.create(scope, [scope], actor="test").secret
            for scope in ("admin", "curator", "matcher", "hasher", "reviewer", "auditor")
        }


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    """The app in-process over SQLite and PostgreSQL, with one key per scope."""
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as client:
        yield Api(client, settings, keys)


@pytest.fixture
def sqlite_api(sqlite_settings: Settings) -> Iterator[Api]:
    keys = make_keys(sqlite_settings)
    with TestClient(create_app(sqlite_settings)) as client:
        yield Api(client, sqlite_settings, keys)
