"""vPDQ hashing throughput: seconds of video hashed per CPU second, SD / 720p / 1080p H.264,
with and without border detection, side by side with the reference ``vpdq`` package from PyPI
when it is installed (it builds against FFmpeg's headers: ``apt-get install libavcodec-dev
libavformat-dev libavdevice-dev libavfilter-dev libswscale-dev libswresample-dev pkg-config``,
then ``pip install vpdq``); and what border cropping costs in false frame matches on the
reference clips (when ../shared/reference is present). --out writes a markdown section.

    .venv/bin/python benchmarks/video_throughput.py [--seconds 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime
import io
import itertools
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from PIL import Image
from skimage import data as skdata

from amparo.media.video import VideoLimits, open_video
from amparo.signals.pdq import hamming_matrix
from amparo.signals.vpdq import VpdqFrames, hash_video
from amparo.signals.vpdq_compare import frame_rows

SIZES = {"SD 854x480": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 30
REFERENCE = Path(
    os.environ.get(
        "AMPARO_REFERENCE_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "reference"
    )
)


def make_clip(width: int, height: int, seconds: int) -> bytes:
    photo = Image.fromarray(skdata.astronaut()).resize((width * 2, height * 2))
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(seconds * FPS):
            t = i / (seconds * FPS)
            x, y = int(width * t), int(height * 0.5 * (1 + np.sin(6 * t)))
            window = np.asarray(photo.crop((x, y, x + width, y + height)))
            frame = av.VideoFrame.from_ndarray(window, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def cpu_seconds(fn: Callable[[], object], repeat: int = 4) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


EVERY_FRAME = VideoLimits(reference_frames_only=False)
"""Decode every frame (what Amparo did before it skipped non-reference frames)."""
NO_DEBLOCKING = VideoLimits(skip_deblocking=True)
"""The opt-in: reference frames only, without the deblocking filter."""


def decode_only(data: bytes, limits: VideoLimits | None = None) -> int:
    with open_video(data, limits=limits or VideoLimits()) as video:
        return sum(1 for _ in video.frames())


def reference_vpdq(path: Path) -> Callable[[], object] | None:
    """The reference implementation (PyPI ``vpdq``: Meta's C++ vPDQ over FFmpeg's libraries),
    one hash a second on one thread; None when it is not installed. Building it needs FFmpeg's
    headers: apt-get install libavcodec-dev libavformat-dev libavdevice-dev libavfilter-dev
    libswscale-dev libswresample-dev pkg-config && pip install vpdq."""
    try:
        import vpdq  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lambda: vpdq.computeHash(str(path), seconds_per_hash=1.0, thread_count=1)


def keyframes_only(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        return sum(1 for _ in container.decode(stream))


def false_matches() -> list[str]:
    """Frame pairs within 31 bits between *unrelated* reference clips, with and without the
    cropped variants."""
    groups = {
        "chair": ["chair-19-sd-bar", "chair-22-sd-grey-bar", "chair-orig-22-sd-bar"],
        "doorknob": ["doorknob-hd-no-bar"],
        "pattern": ["pattern-sd-grey-bar"],
        "padded": ["test-padded-dimensions"],
    }
    videos = {
        (g, n): hash_video(REFERENCE / "vpdq" / "videos" / f"{n}.mp4", sample_fps=5).vpdq
        for g, names in groups.items()
        for n in names
    }
    lines = [
        "| variants | unrelated frame pairs compared | pairs within 31 bits | min distance |",
        "|---|---:|---:|---:|",
    ]
    for label, crop in (("uncropped only", False), ("uncropped + cropped", True)):
        pairs = hits = 0
        low = 256
        for (ga, a), (gb, b) in itertools.combinations(videos, 2):
            if ga == gb:
                continue
            va, vb = videos[(ga, a)], videos[(gb, b)]
            if not crop:
                va, vb = VpdqFrames(va.frames), VpdqFrames(vb.frames)
            ra, rb = frame_rows(va)[0], frame_rows(vb)[0]
            if not len(ra) or not len(rb):
                continue
            d = hamming_matrix(ra, rb)
            pairs += d.size
            hits += int((d <= 31).sum())
            low = min(low, int(d.min()))
        lines.append(f"| {label} | {pairs:,} | {hits} | {low} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("video-bench.md"))
    args = parser.parse_args()
    rows = [
        "| clip | decode+sample, every frame | decode+sample, reference frames | "
        "hash, every frame decoded (before) | **hash (default)** | hash, no border detection "
        "| border cost | hash, no deblocking (opt-in) | keyframes-only decode (not used) "
        "| reference `vpdq` (PyPI) | Amparo / reference |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, (width, height) in SIZES.items():
        clip = make_clip(width, height, args.seconds)
        secs = args.seconds
        dec_all = cpu_seconds(lambda c=clip: decode_only(c, EVERY_FRAME))
        dec = cpu_seconds(lambda c=clip: decode_only(c))
        before = cpu_seconds(lambda c=clip: hash_video(c, limits=EVERY_FRAME))
        default = cpu_seconds(lambda c=clip: hash_video(c))
        plain = cpu_seconds(lambda c=clip: hash_video(c, crop_borders=False))
        rough = cpu_seconds(lambda c=clip: hash_video(c, limits=NO_DEBLOCKING))
        key = cpu_seconds(lambda c=clip: keyframes_only(c))
        keyframes = keyframes_only(clip)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "clip.mp4"
            path.write_bytes(clip)
            peer = reference_vpdq(path)
            ref = cpu_seconds(peer) if peer is not None else None
        peer_cells = (
            f"| {secs / ref:.1f} | {ref / default:.2f}x |"
            if ref is not None
            else "| n/a (not installed) | |"
        )
        rows.append(
            f"| {label} | {secs / dec_all:.1f} | {secs / dec:.1f} | {secs / before:.1f} "
            f"| **{secs / default:.1f}** | {secs / plain:.1f} "
            f"| {100 * (default / plain - 1):+.0f}% | {secs / rough:.1f} "
            f"| {secs / key:.1f} ({keyframes} of {secs} samples) " + peer_cells
        )
        print(rows[-1], flush=True)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if "Model name" in ln), "?"
    )
    out = [
        "# vPDQ hashing throughput",
        "",
        f"Measured {datetime.date.today()} on {model}, {os.cpu_count()} cores, shared with other",
        "engineers' test and benchmark runs (numbers are CPU time, best of 4, so contention "
        "inflates them less than wall time, but caches and turbo are shared).",
        f"Python {platform.python_version()}, PyAV {av.__version__}, FFmpeg "
        f"{av.ffmpeg_version_info}, numpy {np.__version__}.",
        "",
        f"Clips: {args.seconds} s, {FPS} fps, H.264 (libx264 veryfast, CRF 23), a pan across a "
        "photo; hashed at 1 frame a second, frames reduced to a 600 px short side, one decoder "
        "thread. Figures are **seconds of video per CPU second** (higher is better).",
        "",
        *rows,
        "",
        "Border detection runs on every kept sampled frame and costs a second PDQ hash only",
        "where bars are found; these clips have none (see the reference clips below, which do).",
        "By default frames no other frame refers to (B-frames) are not decoded when sampling",
        "keeps at most one frame in four (`VideoLimits.reference_frames_only`, FFmpeg's",
        "`skip_frame=NONREF`); a sample is then the first decoded frame at or after its time.",
        "Keyframes-only decoding (`skip_frame=NONKEY`) is shown for scale: it samples far fewer",
        "frames than asked for (one per GOP), so it is not used.",
    ]
    if (REFERENCE / "vpdq" / "videos").is_dir():
        start = time.process_time()
        ref = REFERENCE / "vpdq" / "videos" / "chair-22-sd-grey-bar.mp4"
        plain = cpu_seconds(lambda: hash_video(ref, crop_borders=False), 1)
        crop = cpu_seconds(lambda: hash_video(ref, crop_borders=True), 1)
        out += [
            "",
            "## Border cropping on barred video, and false matches",
            "",
            f"chair-22-sd-grey-bar (480x720, pillarboxed, 22.4 s): {22.4 / plain:.1f} s/s without,"
            f" {22.4 / crop:.1f} s/s with border detection ({100 * (crop / plain - 1):+.0f}%).",
            "",
            "Frame pairs between unrelated reference clips (hashed at 5 frames a second):",
            "",
            *false_matches(),
        ]
        print(f"reference section took {time.process_time() - start:.0f} CPU s")
    args.out.write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
