"""v1: hash media, match media or signals, look one signal up, compare, index status, audit."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool

from amparo.actions import TakenAction
from amparo.api.auth import ANY, AUDIT, HASH, MATCH, requires
from amparo.api.media import fetch_media, hash_media_bytes, hash_upload, read_upload
from amparo.api.schemas import (
    ActionTakenOut,
    AuditOut,
    CompareIn,
    CompareOut,
    HashesOut,
    IndexStatusOut,
    IndexTypeStatus,
    LookupOut,
    MatchOut,
    MediaMatchOut,
    SignalResult,
    SignalsMatchIn,
    SignalsMatchOut,
    SignalTypeName,
)
from amparo.api.service import Service, get_service
from amparo.errors import DatabaseNeededError, InputError
from amparo.events import Source
from amparo.hashing import MediaHashes
from amparo.indexing import memory_only
from amparo.keys import ApiKey
from amparo.matching import Match, default_threshold
from amparo.probes import sees_distance
from amparo.signals import get_signal_type, normalize_signal

router = APIRouter(tags=["v1: matching"])

UrlParam = Annotated[
    str | None,
    Query(max_length=2048, description="Fetch the media from this http(s) URL instead."),
]
BanksParam = Annotated[
    list[str] | None,
    Query(alias="bank", max_length=100, description="Only these banks (repeatable)."),
]
FileParam = Annotated[UploadFile | None, File(description="The media to hash.")]


def _exactly_one(file: UploadFile | None, url: str | None) -> None:
    if (file is None) == (url is None):
        raise InputError(
            "send exactly one of: a file upload (form field 'file') or a url= parameter"
        )


async def media_bytes(
    file: UploadFile | None, url: str | None, service: Service, key: ApiKey
) -> bytes:
    """The bytes of an upload, or of the media at a URL (fetched on the event loop)."""
    _exactly_one(file, url)
    if file is not None:
        return await run_in_threadpool(read_upload, file, service)
    assert url is not None
    return await fetch_media(url, service, key)


async def fetched_media(
    file: UploadFile | None, url: str | None, service: Service, key: ApiKey
) -> bytes | None:
    """Check that exactly one of an upload and a URL was given; the URL's media, fetched on
    the event loop (no worker thread waits on a slow server), or None for an upload."""
    _exactly_one(file, url)
    return None if url is None else await fetch_media(url, service, key)


def media_hashes(
    file: UploadFile | None, fetched: bytes | None, service: Service, *, dihedral: bool = False
) -> MediaHashes:
    """Hash an upload (a video straight from its spooled file) or fetched media."""
    if file is not None:
        return hash_upload(file, service, dihedral=dihedral)
    assert fetched is not None
    return hash_media_bytes(fetched, service, dihedral=dihedral)


@router.post("/hash", response_model=HashesOut, summary="Hash an upload or a URL")
async def hash_media(
    file: FileParam = None,
    url: UrlParam = None,
    dihedral: bool = False,
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*HASH)),
) -> HashesOut:
    service.metrics.lookups.labels("hash").inc()
    fetched = await fetched_media(file, url, service, key)
    hashes = await run_in_threadpool(media_hashes, file, fetched, service, dihedral=dihedral)
    return HashesOut.of(hashes)


class SourceParams:
    """The platform's own ids for what it is checking; passed on to the action rules."""

    def __init__(
        self,
        account_id: Annotated[
            str | None, Query(max_length=200, description="Your id of the uploading account.")
        ] = None,
        upload_id: Annotated[
            str | None, Query(max_length=200, description="Your id of the upload or post.")
        ] = None,
        file_name: Annotated[
            str | None, Query(max_length=500, description="The original file name.")
        ] = None,
    ) -> None:
        self.account_id, self.upload_id, self.file_name = account_id, upload_id, file_name

    def source(self, url: str | None = None, file_name: str | None = None) -> Source:
        return Source(
            kind="api",
            account_id=self.account_id,
            upload_id=self.upload_id,
            url=url,
            file_name=self.file_name or file_name,
        )


def _taken(actions: list[TakenAction]) -> list[ActionTakenOut]:
    return [ActionTakenOut(**a.to_json()) for a in actions]


@router.post("/match", response_model=MediaMatchOut, summary="Match an upload or a URL")
async def match_media(
    file: FileParam = None,
    url: UrlParam = None,
    banks: BanksParam = None,
    where: SourceParams = Depends(),
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*MATCH)),
) -> MediaMatchOut:
    """Match media; when it matches, the action rules run on it (``actions`` says what they
    did; the upload's bytes reach the evidence store only if a rule preserves them)."""
    fetched = await fetched_media(file, url, service, key)
    return await run_in_threadpool(_match_media, file, fetched, url, banks, where, service, key)


def _match_media(
    file: UploadFile | None,
    fetched: bytes | None,
    url: str | None,
    banks: list[str] | None,
    where: SourceParams,
    service: Service,
    key: ApiKey,
) -> MediaMatchOut:
    service.metrics.lookups.labels("media").inc()
    checks = service.amparo.checks
    dihedral = checks.wants_dihedral(banks or None)
    hashes = media_hashes(file, fetched, service, dihedral=dihedral)

    def media() -> bytes | None:  # read again only when a rule acts on a match
        if fetched is None and file is not None:
            file.file.seek(0)
            return file.file.read()
        return fetched

    source = where.source(url, file.filename if file is not None else None)
    check = checks.check_media(
        hashes, source=source, actor=key.actor, banks=banks or None, media=media
    )
    service.count_matches(check.matches)
    if hashes.pdq is not None:
        service.screen(key, [("pdq", hashes.pdq)], [check.matches])
    return MediaMatchOut(
        hashes=HashesOut.of(hashes),
        matches=[MatchOut.of(m, exact=sees_distance(key)) for m in check.matches],
        pdq_skipped=check.result.pdq_skipped,
        actions=_taken(check.actions),
    )


@router.post(
    "/match/signals", response_model=SignalsMatchOut, summary="Match signals (hashes) in a batch"
)
def match_signals(
    body: SignalsMatchIn,
    where: SourceParams = Depends(),
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*MATCH)),
) -> SignalsMatchOut:
    """Match signals; matches run the action rules when the content is named by its sha256
    (send one content's signals, sha256 included, per request: see docs/actions.md)."""
    service.limiter.check(key, cost=len(body.signals) - 1, batch=len(body.signals))
    service.metrics.lookups.labels("signal").inc(len(body.signals))
    pairs = [normalize_signal(s.signal_type, s.signal) for s in body.signals]
    check = service.amparo.checks.check_signals(
        pairs, source=where.source(), actor=key.actor, banks=body.banks or None
    )
    results = check.results
    service.screen(key, pairs, results)
    exact = sees_distance(key)
    out = []
    for (signal_type, value), matches in zip(pairs, results, strict=True):
        service.count_matches(matches)
        out.append(
            SignalResult(
                signal_type=signal_type,
                signal=value,
                matches=[MatchOut.of(m, exact=exact) for m in matches],
            )
        )
    return SignalsMatchOut(
        results=out, actions=_taken(check.actions), actions_skipped=check.actions_skipped
    )


def _lookup(
    service: Service,
    key: ApiKey,
    signal_type: str,
    signal: str,
    banks: list[str] | None,
    source: Source,
) -> tuple[list[Match], list[TakenAction]]:
    """Look one signal up and run the rules on a find; what ``/v1/lookup`` answers."""
    check = service.amparo.checks.check_signals(
        [(signal_type, signal)], source=source, actor=key.actor, banks=banks or None
    )
    # Counted once answered: a lookup refused on the event loop runs again in a thread.
    service.metrics.lookups.labels("signal").inc()
    matches = check.results[0]
    service.count_matches(matches)
    service.screen(key, [(signal_type, signal)], [matches])
    return matches, check.actions


def _lookup_in_memory(
    service: Service,
    key: ApiKey,
    signal_type: str,
    signal: str,
    banks: list[str] | None,
    source: Source,
) -> tuple[list[Match], list[TakenAction]] | None:
    """:func:`_lookup` on the event loop when it is all in memory (fresh index, no rule
    enabled); None when it needs the database (or a rule could act)."""
    checks = service.amparo.checks
    if not (service.amparo.matcher.answers_from_memory() and checks.rules_known_inactive()):
        return None
    try:
        with memory_only():
            return _lookup(service, key, signal_type, signal, banks, source)
    except DatabaseNeededError:
        return None


@router.get("/lookup", response_model=LookupOut, summary="Look one signal up")
async def lookup(
    signal_type: Annotated[SignalTypeName, Query()],
    signal: Annotated[str, Query(max_length=200)],
    banks: BanksParam = None,
    where: SourceParams = Depends(),
    service: Service = Depends(get_service),
    key: ApiKey = Depends(requires(*MATCH)),
) -> LookupOut:
    """Look one signal up; a matched ``sha256`` names its content, so the action rules run
    on it as on ``/v1/match/signals`` (``actions``)."""
    args = (service, key, signal_type, signal, banks, where.source())
    found = _lookup_in_memory(*args)
    if found is None:
        found = await service.off_loop(_lookup, *args)
    matches, actions = found
    return LookupOut(
        matches=[MatchOut.of(m, exact=sees_distance(key)) for m in matches],
        actions=_taken(actions),
    )


@router.post("/compare", response_model=CompareOut, summary="Distance between two hashes")
def compare(
    body: CompareIn,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*HASH)),
) -> CompareOut:
    st = get_signal_type(body.signal_type)
    distance = st.distance(st.normalize(body.a), st.normalize(body.b))
    threshold = default_threshold(st, service.settings)
    return CompareOut(
        signal_type=st.name, distance=distance, match=distance <= threshold, threshold=threshold
    )


def index_status_of(service: Service) -> IndexStatusOut:
    matcher = service.amparo.matcher
    store = service.amparo.store
    db_seq = store.changes.current_seq()
    types = {"pdq": IndexTypeStatus(entries=len(matcher.index))}
    for name in ("md5", "sha1", "sha256", "vpdq"):
        types[name] = IndexTypeStatus(entries=service.amparo.banks.count_active(name))
    age = service.index_age()
    return IndexStatusOut(
        ready=matcher.checkpoint >= 0,
        current=matcher.checkpoint >= db_seq,
        checkpoint=matcher.checkpoint,
        database_checkpoint=db_seq,
        age_seconds=round(age, 3) if age is not None else None,
        signal_types=types,
    )


@router.get("/index/status", response_model=IndexStatusOut, summary="Index status")
def index_status(
    service: Service = Depends(get_service), _key: ApiKey = Depends(requires(*ANY))
) -> IndexStatusOut:
    return index_status_of(service)


@router.get("/audit", response_model=list[AuditOut], summary="Read the audit log")
def audit(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    target: Annotated[str | None, Query(max_length=200)] = None,
    service: Service = Depends(get_service),
    _key: ApiKey = Depends(requires(*AUDIT)),
) -> list[AuditOut]:
    return [
        AuditOut(
            id=e.id,
            at=e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC),
            actor=e.actor,
            action=e.action,
            target=e.target,
            details=e.details,
        )
        for e in service.amparo.audit.entries(limit, target)
    ]
