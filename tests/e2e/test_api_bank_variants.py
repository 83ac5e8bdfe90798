"""``POST /v1/banks/{name}/media`` says which crop variants it stored, and a cropped copy of
the photo then matches its PDQ entry (docs/detection.md). Benign photos only."""

from __future__ import annotations

import io

from PIL import Image
from skimage import data
from test_api_support import Api, sqlite_api

from amparo.signals.pdq_variants import CROPS

__all__ = ["sqlite_api"]


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_media_added_lists_its_variants_and_a_crop_matches(sqlite_api: Api) -> None:
    c, cur = sqlite_api.client, sqlite_api.as_("curator")
    photo = Image.fromarray(data.coffee())
    assert c.post("/v1/banks", json={"name": "known"}, headers=cur).status_code == 201
    r = c.post(
        "/v1/banks/known/media",
        files={"file": ("c.png", _encoded(photo, "PNG"), "image/png")},
        headers=cur,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["signals"] == ["pdq", "md5"] and body["variants"] == [
        "mirror",
        *(c.name for c in CROPS),
    ]
    cropped = photo.crop((0, 0, photo.width, photo.height - photo.height // 10))  # 10% off
    r = c.post(
        "/v1/match",
        files={"file": ("q.jpg", _encoded(cropped, "JPEG"), "image/jpeg")},
        headers=sqlite_api.as_("matcher"),
    )
    assert r.status_code == 200, r.text
    matches = r.json()["matches"]
    assert [(m["entry_id"], m["signal_type"]) for m in matches] == [
        (body["entry_ids"]["pdq"], "pdq")
    ]
