"""The settings table's rows for what is read and decoded (size and decode limits, URLs
fetched, video sampling and matching shares) and for where scans run (worker processes or a
Ray cluster, buckets). :class:`amparo.config.Settings` inherits them; every row is documented
in docs/configuration.md like the others.
"""

from __future__ import annotations

from dataclasses import dataclass

from amparo.config_hotline import HotlineSettings, setting


@dataclass(frozen=True)
class MediaSettings(HotlineSettings):
    """Limits on media, video sampling, scan engines and buckets."""

    max_image_pixels: int = setting(
        178_956_970,
        "Images with more pixels are refused as decompression bombs.",
    )
    max_file_bytes: int = setting(
        512 * 1024 * 1024,
        "Files larger than this are not decoded (digests are still computed).",
    )
    max_archive_ratio: int = setting(
        200,
        "Archive members expanding more than this factor are refused.",
    )
    max_archive_member_bytes: int = setting(
        256 * 1024 * 1024,
        "Archive members larger than this are refused.",
    )
    max_decode_memory: int = setting(
        512 * 1024 * 1024,
        "Bytes one process may spend decoding images and video frames at once.",
    )
    import_commit_rows: int = setting(
        5_000_000,
        "Hash lists with more rows than this are read whole first (a bad row still changes "
        "nothing), then merged into the bank in parts of this many, each its own commit, so "
        "no transaction holds a 100-million-entry list; 0: always one transaction.",
    )
    match_mirrored: bool = setting(
        True,
        "Match horizontally mirrored copies of photos in every bank (the query's mirrored "
        "PDQ); banks with `dihedral` also match rotations and vertical flips.",
    )
    trim_borders: bool = setting(
        True,
        "Also hash photos with uniform borders, pads and caption bars trimmed, and look up "
        "both hashes (docs/detection.md).",
    )
    bank_crop_variants: bool = setting(
        True,
        "When media is added to a bank, also store PDQ hashes of a few crops of it as "
        "variants of the entry, so that cropped copies match (docs/detection.md).",
    )
    workers: int = setting(0, "Hashing worker processes for scans; 0 means one per CPU core.")
    scan_engine: str = setting(
        "local", "Where `amparo scan` hashes: local (worker processes) or ray (a Ray cluster)."
    )
    ray_address: str = setting(
        "",
        "Ray cluster for `--engine ray` (host:port or auto); empty: RAY_ADDRESS if set, else "
        "a local one for the scan.",
    )
    s3_endpoint: str = setting(
        "", "Endpoint URL of an S3-compatible store for s3:// scan paths; empty: AWS's."
    )
    s3_region: str = setting("", "Region for s3:// scan paths; empty: boto3's default chain.")
    s3_profile: str = setting(
        "", "AWS profile for s3:// scan paths; empty: boto3's default credential chain."
    )
    s3_max_spool_bytes: int = setting(
        4 * 1024**3,
        "Archive objects in buckets larger than this are digested but not opened (a worker "
        "copies an archive to its temporary disk to open it).",
    )
    video_sample_fps: float = setting(
        1.0,
        "Frames a second hashed from videos that are looked up (scan, API, hash).",
    )
    video_bank_sample_fps: float = setting(
        10.0,
        "Frames a second hashed from videos added to a bank.",
    )
    video_query_share: float = setting(
        0.8,
        "Share (0-1) of a query video's frames that must match a bank video.",
    )
    video_bank_share: float = setting(
        0.8,
        "Share (0-1) of a bank video's frames the query must cover.",
    )
    video_clip: bool = setting(
        False,
        "Clip mode: a query that is part of a longer bank video matches (no bank share).",
    )
    video_bank_coverage_seconds: float = setting(
        0.5,
        "A bank frame within this many seconds of a matched one counts as covered.",
    )
    video_max_file_bytes: int = setting(
        8 * 1024**3,
        "Videos larger than this are digested but not decoded.",
    )
    video_max_duration_seconds: int = setting(
        6 * 3600,
        "Videos longer than this (declared or decoded) are refused.",
    )
    video_timeout_seconds: int = setting(900, "Wall-clock limit for decoding one video.")
    url_allowlist: str = setting(
        "",
        "Hosts, addresses or networks (CIDR) that url= fetching and webhook deliveries may reach "
        "even though they are private, loopback or link-local; comma-separated.",
    )
    fetch_timeout_seconds: int = setting(
        10,
        "Total time allowed for fetching one url= (all redirects).",
    )
    fetch_max_bytes: int = setting(32 * 1024 * 1024, "Largest body fetched from a url=.")
    fetch_max_redirects: int = setting(5, "Most redirects followed when fetching a url=.")
    fetch_max_concurrent_per_key: int = setting(
        4,
        "URL fetches one API key may have in flight (more: 429).",
    )
    fetch_max_concurrent: int = setting(
        32,
        "URL fetches one API process may have in flight (more: 429).",
    )
