"""An upload whose decode would exceed ``max_decode_memory`` is refused with a clear 413, not
decoded (and not a 500)."""

from __future__ import annotations

import io
from dataclasses import replace

from fastapi.testclient import TestClient
from PIL import Image
from test_api_support import make_keys

from amparo.api import create_app
from amparo.config import Settings


def test_upload_over_the_decode_memory_bound_is_refused(sqlite_settings: Settings) -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (3000, 3000), (1, 2, 3, 4)).save(buf, "PNG")  # ~36 MiB decoded
    settings = replace(sqlite_settings, max_decode_memory=32 * 1024 * 1024)
    keys = make_keys(settings)
    with TestClient(create_app(settings)) as c:
        h = {"Authorization": f"Bearer {keys['admin']}"}
        r = c.post("/v1/hash", files={"file": ("b.png", buf.getvalue(), "image/png")}, headers=h)
        assert r.status_code == 413, r.text
        error = r.json()["error"]
        assert error["code"] == "media_too_large" and "max_decode_memory" in error["message"]
        assert "AMPARO_MAX_DECODE_MEMORY" in error["hint"]
        small = io.BytesIO()
        Image.new("RGB", (300, 300), (9, 9, 9)).save(small, "PNG")
        r = c.post("/v1/hash", files={"file": ("s.png", small.getvalue(), "image/png")}, headers=h)
        assert r.status_code == 200, r.text
