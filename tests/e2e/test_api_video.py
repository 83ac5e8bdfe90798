"""Video over HTTP: /v1/hash and HMA /h/hash give a video upload's vPDQ (hashed from the
spooled upload), /m/compare judges vPDQ by the configured shares, and a broken video keeps
its digests. The video is generated here with PyAV from scikit-image's bundled photo."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from test_api_support import QUIET, Api, sqlite_api

from amparo.signals.vpdq import parse_vpdq

__all__ = ["sqlite_api"]
pytestmark = QUIET

av = pytest.importorskip("av")
skdata = pytest.importorskip("skimage.data")
SECONDS, FPS = 4, 10


def make_video(width: int = 160, height: int = 120) -> bytes:
    photo = skdata.astronaut()
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(SECONDS * FPS):
            window = Image.fromarray(photo[100:356, i * 4 : i * 4 + 256])
            pixels = np.asarray(window.resize((width, height), Image.Resampling.BILINEAR))
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def video() -> bytes:
    return make_video()


def test_v1_hash_gives_a_videos_vpdq(sqlite_api: Api, video: bytes) -> None:
    r = sqlite_api.client.post(
        "/v1/hash", files={"file": ("v.mp4", video, "video/mp4")}, headers=sqlite_api.as_("hasher")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["media_type"] == "video" and body["pdq"] is None and body["error"] is None
    frames = parse_vpdq(body["vpdq"]).frames
    assert len(frames) == body["video"]["frames"] and body["video"]["sample_fps"] == 1.0
    assert body["video"]["width"] == 160 and body["video"]["duration_seconds"] >= SECONDS - 0.5

    broken = video[: len(video) // 3]
    r = sqlite_api.client.post(
        "/v1/hash", files={"file": ("v.mp4", broken, "video/mp4")}, headers=sqlite_api.as_("hasher")
    )
    assert r.status_code == 200, r.text
    assert r.json()["vpdq"] is None and r.json()["error"] and len(r.json()["md5"]) == 32


def test_hma_hash_and_compare_video(sqlite_api: Api, video: bytes) -> None:
    c, h = sqlite_api.client, sqlite_api.as_("hasher")
    r = c.post("/h/hash", files={"video": ("v.mp4", video, "video/mp4")}, headers=h)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"vpdq", "md5"}
    vpdq = r.json()["vpdq"]
    r = c.post(
        "/h/hash", params={"types": "vpdq,sha256"}, files={"video": ("v.mp4", video, "video/mp4")},
        headers=h,
    )  # fmt: skip
    assert set(r.json()) == {"vpdq", "sha256"} and r.json()["vpdq"] == vpdq

    smaller = make_video(128, 96)
    other = c.post("/h/hash", files={"video": ("v.mp4", smaller, "video/mp4")}, headers=h)
    r = c.post("/m/compare", json={"vpdq": [vpdq, other.json()["vpdq"]]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["vpdq"][0] is True


def test_adding_media_answers_what_was_added(sqlite_api: Api, video: bytes) -> None:
    """Issue 12 (point 15): the answer said what was hashed, not what was added: a video
    showed no vPDQ signal among the added ones, a flat photo's PDQ looked added."""
    c, cur = sqlite_api.client, sqlite_api.as_("curator")
    assert c.post("/v1/banks", json={"name": "vids"}, headers=cur).status_code == 201
    r = c.post("/v1/banks/vids/media", files={"file": ("v.mp4", video, "video/mp4")}, headers=cur)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["signals"] == ["vpdq", "md5", "sha256"] and body["not_added"] == {}
    assert set(body["entry_ids"]) == {"vpdq", "md5", "sha256"}
    assert body["hashes"]["video"]["sample_fps"] == 10.0 and body["hashes"]["video"]["frames"]

    flat = io.BytesIO()
    Image.new("RGB", (256, 256), (128, 128, 128)).save(flat, format="PNG")
    r = c.post(
        "/v1/banks/vids/media", files={"file": ("f.png", flat.getvalue(), "image/png")}, headers=cur
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["signals"] == ["md5"] and set(body["entry_ids"]) == {"md5"}
    assert "pdq_min_quality" in body["not_added"]["pdq"]
