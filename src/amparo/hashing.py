"""Hash one piece of media: file digests always, PDQ when it decodes as an image."""

from __future__ import annotations

from dataclasses import dataclass, field

from amparo.errors import MediaError
from amparo.media.decode import DEFAULT_MAX_PIXELS, decode_image
from amparo.media.sniff import sniff
from amparo.signals.digests import digest_bytes
from amparo.signals.pdq import pdq_dihedral_from_pixels, pdq_from_pixels


@dataclass
class MediaHashes:
    """Every signal computed for one piece of media. Nothing of the media itself is kept."""

    size: int
    md5: str
    sha1: str
    sha256: str
    media_type: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_dihedral: list[str] = field(default_factory=list)
    """The other seven dihedral PDQ hashes (rotations, flips), when asked for."""
    error: str | None = None
    """Why no perceptual hash could be computed (digests are still valid)."""

    def signals(self) -> dict[str, str]:
        """Signal type name -> value, for the signals that were computed."""
        out = {"md5": self.md5, "sha1": self.sha1, "sha256": self.sha256}
        if self.pdq is not None:
            out["pdq"] = self.pdq
        return out

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "media_type": self.media_type,
            "size": self.size,
            "pdq": self.pdq,
            "pdq_quality": self.pdq_quality,
            "md5": self.md5,
            "sha1": self.sha1,
            "sha256": self.sha256,
        }
        if self.pdq_dihedral:
            data["pdq_dihedral"] = self.pdq_dihedral
        if self.error:
            data["error"] = self.error
        return data


def hash_media(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, dihedral: bool = False
) -> MediaHashes:
    """Hash media bytes. Decoding problems are recorded in ``error``, not raised."""
    digests = digest_bytes(data)
    result = MediaHashes(
        size=digests.size, md5=digests.md5, sha1=digests.sha1, sha256=digests.sha256
    )
    result.media_type = sniff(data[:512])
    try:
        # Luma straight from the decoder (a JPEG's Y channel, DCT-reduced): the first half of
        # PDQ's canonical preprocessing; pdq_from_pixels does the rest.
        decoded = decode_image(data, max_pixels=max_pixels, mode="L")
    except MediaError as exc:
        result.error = exc.message
        return result
    if dihedral:
        hashes, quality = pdq_dihedral_from_pixels(decoded.pixels)
        result.pdq, result.pdq_dihedral = hashes[0], hashes[1:]
    else:
        pdq = pdq_from_pixels(decoded.pixels)
        result.pdq, quality = pdq.hex, pdq.quality
    result.pdq_quality = quality
    return result
