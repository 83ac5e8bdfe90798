"""Request and response bodies of the v1 API (what /openapi.json documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from amparo.banks.model import BankInfo
from amparo.clock import as_utc
from amparo.hashing import MediaHashes
from amparo.matching import Match
from amparo.probes import distance_band

# A pair [line, message], described so that OpenAPI 3.0 and 3.1 tools alike read it (pydantic's
# own `prefixItems` is JSON Schema 2020-12 only).
_PROBLEMS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "array",
        "items": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        "minItems": 2,
        "maxItems": 2,
    },
}

SignalTypeName = Literal["pdq", "md5", "sha1", "sha256"]
MatchPath = Literal["plain", "trimmed", "variant", "dihedral"]
"""How a match was found: ``amparo.matching.PATHS`` (a test checks they agree)."""
BankKind = Annotated[
    Literal["positive", "negative"],
    Field(description="positive: known abuse material; negative: known benign (suppresses)"),
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    hint: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class Strict(BaseModel):
    """Base of request bodies: unknown fields and mistyped values are refused (``"enabled": 0``
    or ``"limit": "5"`` is a 400, not silently coerced), as the OpenAPI document declares.
    A field that takes text for another type (a time) says ``Field(strict=False)``."""

    model_config = ConfigDict(extra="forbid", strict=True)


class HashesOut(BaseModel):
    media_type: str | None = None
    size: int
    pdq: str | None = None
    pdq_quality: int | None = None
    md5: str
    sha1: str
    sha256: str
    pdq_dihedral: list[str] | None = None
    vpdq: str | None = Field(
        default=None, description="A video's vPDQ, compact one-line form (vpdq1:...)."
    )
    video: dict[str, float | int | None] | None = Field(
        default=None,
        description="A hashed video: duration_seconds, frames, cropped_frames, width, height, "
        "frame_rate, sample_fps.",
    )
    error: str | None = None

    @classmethod
    def of(cls, h: MediaHashes) -> HashesOut:
        return cls(
            media_type=h.media_type,
            size=h.size,
            pdq=h.pdq,
            pdq_quality=h.pdq_quality,
            md5=h.md5,
            sha1=h.sha1,
            sha256=h.sha256,
            pdq_dihedral=h.pdq_dihedral or None,
            vpdq=h.vpdq,
            video=h.video,
            error=h.error,
        )


class MatchOut(BaseModel):
    """One matched bank entry: what matched and how closely, never the bank's hash."""

    bank: str
    entry_id: int
    signal_type: str
    distance: int | None = Field(
        description="Hamming distance; only for curator, admin and `distance`-scope keys "
        "(null for the rest: see band)."
    )
    band: str = Field(
        description="How close: exact (0), close (1-15 bits) or near (16 bits up to the "
        "threshold). Matchers get only this, so lookups cannot reconstruct a bank's hashes."
    )
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    transform: str | None = Field(
        default=None,
        description="dihedral matches: which flip or rotation of the query matched "
        "(flipx is a mirror).",
    )
    path: MatchPath = Field(
        default="plain",
        description="How the match was found (docs/detection.md): plain (the content's own "
        "hash or digest), trimmed (with borders or bars trimmed), variant (a stored crop of "
        "the bank's media), dihedral (a mirrored or rotated copy; see transform).",
    )
    variant: str | None = Field(
        default=None, description="variant matches: which stored crop of the entry matched."
    )
    video: dict[str, object] | None = Field(
        default=None,
        description="vpdq matches: query_share, bank_share, query_ranges and bank_ranges "
        "([start, end] seconds), query_frames, bank_frames.",
    )

    @classmethod
    def of(cls, m: Match, *, exact: bool) -> MatchOut:
        """``exact``: whether the caller may see the distance (see amparo.probes)."""
        detail = m.video
        return cls(
            video=detail.to_json() if detail is not None else None,
            bank=m.bank,
            entry_id=m.entry_id,
            signal_type=m.signal_type,
            distance=m.distance if exact else None,
            band=distance_band(m.distance),
            category=m.category,
            tags=list(m.tags),
            transform=m.transform,
            path=cast(MatchPath, m.path),
            variant=m.variant,
        )


class ActionTakenOut(BaseModel):
    """One action a rule took on a find (docs/actions.md); also in the actions-taken log."""

    rule: str
    rule_version: int
    action: str
    outcome: str = Field(description="done, failed (see error) or skipped.")
    detail: dict[str, object] = Field(default_factory=dict)
    error: str | None = None


class MediaMatchOut(BaseModel):
    hashes: HashesOut
    matches: list[MatchOut]
    pdq_skipped: str | None = None
    actions: list[ActionTakenOut] = Field(
        default_factory=list, description="What the action rules did about a match."
    )


class SignalIn(Strict):
    signal_type: SignalTypeName
    signal: str = Field(max_length=200)


class SignalsMatchIn(Strict):
    signals: list[SignalIn] = Field(min_length=1, max_length=1000)
    banks: list[str] | None = Field(default=None, max_length=100)


class SignalResult(BaseModel):
    signal_type: str
    signal: str
    matches: list[MatchOut]


class SignalsMatchOut(BaseModel):
    results: list[SignalResult]
    actions: list[ActionTakenOut] = Field(
        default_factory=list, description="What the action rules did about the matches."
    )
    actions_skipped: str | None = Field(
        default=None, description="Why matched signals ran no rules (no sha256 named them)."
    )


class LookupOut(BaseModel):
    matches: list[MatchOut]
    actions: list[ActionTakenOut] = Field(
        default_factory=list, description="What the action rules did (a matched sha256)."
    )


class CompareIn(Strict):
    signal_type: SignalTypeName
    a: str = Field(max_length=200)
    b: str = Field(max_length=200)


class CompareOut(BaseModel):
    signal_type: str
    distance: int
    match: bool
    threshold: int


class BankOut(BaseModel):
    name: str
    description: str
    source: str
    supplier: str
    terms: str
    enabled: bool
    pdq_threshold: int | None
    dihedral: bool
    kind: str
    entries: int
    created_at: datetime | None
    imported_at: datetime | None

    @classmethod
    def of(cls, b: BankInfo) -> BankOut:
        return cls(
            name=b.name,
            description=b.description,
            source=b.source,
            supplier=b.supplier,
            terms=b.terms,
            enabled=b.enabled,
            pdq_threshold=b.pdq_threshold,
            dihedral=b.dihedral,
            kind=b.kind,
            entries=b.entry_count,
            created_at=as_utc(b.created_at),
            imported_at=as_utc(b.imported_at),
        )


class BankIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=10_000)
    source: str = Field(default="", max_length=10_000)
    supplier: str = Field(default="", max_length=10_000)
    terms: str = Field(default="", max_length=10_000)
    enabled: bool = True
    pdq_threshold: int | None = Field(default=None, ge=0, le=63)
    dihedral: bool = False
    kind: BankKind = "positive"


class BankPatch(Strict):
    description: str | None = Field(default=None, max_length=10_000)
    source: str | None = Field(default=None, max_length=10_000)
    supplier: str | None = Field(default=None, max_length=10_000)
    terms: str | None = Field(default=None, max_length=10_000)
    enabled: bool | None = None
    pdq_threshold: int | None = Field(default=None, ge=0, le=63)
    dihedral: bool | None = None
    kind: BankKind | None = None


class DeletedOut(BaseModel):
    deleted: str


class EntryIn(Strict):
    signal_type: SignalTypeName
    signal: str = Field(max_length=200)
    category: str | None = Field(default=None, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=50)
    source_id: str | None = Field(default=None, max_length=1000)
    note: str | None = Field(default=None, max_length=10_000)
    enabled: bool = True


class EntriesIn(Strict):
    entries: list[EntryIn] = Field(min_length=1, max_length=10_000)


class ImportOut(BaseModel):
    bank: str
    added: int
    updated: int
    removed: int = 0
    read: int
    problems: Annotated[list[tuple[int, str]], WithJsonSchema(_PROBLEMS_SCHEMA)] = Field(
        default_factory=list,
        description="[line number, what is wrong] for each rejected line.",
    )
    problem_count: int = 0
    warnings: list[str] = Field(default_factory=list)


class EntrySelection(Strict):
    """Entries named by id (as matches report them) or by signal."""

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list, max_length=10_000
    )
    signals: list[SignalIn] = Field(default_factory=list, max_length=10_000)


class DisableIn(EntrySelection):
    until: datetime | None = Field(
        default=None,
        description="Pause matching until then; omit to disable until re-enabled.",
        strict=False,  # an ISO 8601 string
    )


class ChangedOut(BaseModel):
    changed: int


class MediaAddOut(BaseModel):
    bank: str
    hashes: HashesOut = Field(description="Every hash computed, added to the bank or not.")
    entry_ids: dict[str, int] = Field(description="Entry id of each signal written to the bank.")
    added: int
    updated: int
    signals: list[str] = Field(
        default_factory=list,
        description="The signal types written to the bank (pdq and md5 for a photo whose PDQ "
        "is usable; vpdq, md5 and sha256 for a video).",
    )
    not_added: dict[str, str] = Field(
        default_factory=dict,
        description="Signal type -> why that perceptual hash was not added (a flat photo's "
        "PDQ below pdq_min_quality; a video with no usable frame).",
    )
    variants: list[str] = Field(
        default_factory=list,
        description="The crop variants stored with a photo's PDQ entry (crop5-left, "
        "crop10-centre...; setting bank_crop_variants), so that cropped copies match it. "
        "Matches through one report the entry, with path 'variant' and the variant's name.",
    )


class IndexTypeStatus(BaseModel):
    entries: int = Field(
        description="Rows held for the type: for pdq, the index's rows (entries and the crop "
        "variants of media added to banks, docs/detection.md); for the others, active entries."
    )


class IndexStatusOut(BaseModel):
    ready: bool
    current: bool
    checkpoint: int
    database_checkpoint: int
    age_seconds: float | None
    signal_types: dict[str, IndexTypeStatus]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, object]
