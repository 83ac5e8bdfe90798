"""Reviewers' opinions flow back to sources: a confirm or false positive on an item that
matched an entry a collaboration brought in is queued once per source record after the
decision commits, and delivered with retries (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fake_exchange import KIND, SOURCES, FakeSource

from amparo.app import Amparo
from amparo.config import Settings
from amparo.events import MatchedContent, Source
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import Collaboration
from amparo.exchanges.service import OPINION_BACKOFF_SECONDS, ExchangeService
from clocks import ManualClock


@pytest.fixture
def core(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, review_fp_disable_after=0)) as amparo:
        yield amparo


@pytest.fixture
def clock() -> ManualClock:
    # Ahead of the real clock: the composition root's own service (real clock) queues the
    # same opinions (the first one wins), and they must be due for this one.
    return ManualClock(datetime.now(UTC) + timedelta(minutes=5))


@pytest.fixture
def source() -> Iterator[FakeSource]:
    name = uuid.uuid4().hex
    SOURCES[name] = src = FakeSource()
    src.name = name  # type: ignore[attr-defined]
    yield src
    SOURCES.pop(name, None)


@pytest.fixture
def svc(core: Amparo, clock: ManualClock) -> ExchangeService:
    svc = ExchangeService(
        core.settings,
        core.store,
        core.banks,
        clock=clock,
        http_factory=lambda: RetryingClient(sleep=lambda s: None),
    )
    # Decisions reach this service (the composition root wires its own the same way).
    core.cases.on_decision(svc.record_decision)
    return svc


def _collab(svc: ExchangeService, source: FakeSource, name: str, **kw: object) -> None:
    svc.add(
        Collaboration(name, KIND, "shared", settings={"source": source.name}, **kw),  # type: ignore[attr-defined,arg-type]
        actor="curator",
    )


def _case_item(core: Amparo, signal: str, n: int) -> int:
    """A case opened on content whose MD5 matched ``signal`` (through amparo.checks)."""
    (matches,) = core.checks.match_signals([("md5", signal)])
    assert matches, "the fetched entry matches"
    case_id = core.cases.open_or_extend(
        MatchedContent(
            sha256=f"{n:064x}",
            matches=tuple(matches),
            source=Source(kind="api", upload_id=f"u{n}"),
            md5=signal,
            size=100,
            media_kind="photo",
            at=datetime.now(UTC),
        )
    )
    (item,) = core.cases.get(case_id).items
    return item.id


def test_decisions_queue_opinions_that_are_delivered_with_retries(
    core: Amparo, svc: ExchangeService, source: FakeSource, clock: ManualClock
) -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    other = "f" * 32
    source.put("ncmec-1", md5)
    source.put("ncmec-2", md5)  # the source lists the hash twice: both records hear of it
    source.put("ncmec-3", other)
    _collab(svc, source, "partner")
    quiet = FakeSource()
    SOURCES[quiet_name := uuid.uuid4().hex] = quiet
    quiet.name = quiet_name  # type: ignore[attr-defined]
    quiet.put("q-1", md5)
    _collab(svc, quiet, "quiet", feedback=False)
    assert svc.fetch("partner").added == 2 and svc.fetch("quiet").added == 0

    confirmed = _case_item(core, md5, 1)
    core.cases.decide(confirmed, "confirm", classification="A1", reviewer="rita")
    assert svc.status("partner").pending_opinions == 2
    assert svc.status("quiet").pending_opinions == 0  # feedback off
    # Deciding again the same way queues nothing more; escalation sends no opinion.
    assert svc.record_decision(core.cases.item(confirmed), core.cases.history(confirmed)[-1]) == 0
    wrong = _case_item(core, other, 2)
    core.cases.decide(wrong, "escalate", reviewer="rita")
    assert svc.status("partner").pending_opinions == 2
    core.cases.decide(wrong, "false_positive", note="a stock photo", reviewer="sam")
    assert svc.status("partner").pending_opinions == 3

    # The source is down for the first try: everything stays queued, retried later.
    source.fail_opinions = 1
    assert svc.deliver_opinions() == 2
    assert svc.status("partner").pending_opinions == 1
    assert svc.deliver_opinions() == 0  # not due yet (backoff)
    clock.advance(OPINION_BACKOFF_SECONDS + 1)
    assert svc.deliver_opinions() == 1
    assert svc.status("partner").pending_opinions == 0
    by_record = {o.record_id: o for o in source.sent}
    assert set(by_record) == {"ncmec-1", "ncmec-2", "ncmec-3"}
    assert by_record["ncmec-1"].verdict == "true_positive"
    assert by_record["ncmec-1"].signal == md5 and by_record["ncmec-1"].reviewer == "rita"
    fp = by_record["ncmec-3"]
    assert fp.verdict == "false_positive" and fp.reason == "a stock photo"
    assert fp.reviewer == "sam" and fp.signal_type == "md5"
    assert quiet.sent == []
    SOURCES.pop(quiet_name, None)


def test_an_opinion_that_keeps_failing_is_given_up(
    core: Amparo, svc: ExchangeService, source: FakeSource, clock: ManualClock
) -> None:
    md5 = "00112233445566778899aabbccddeeff"
    source.put("r", md5)
    _collab(svc, source, "partner")
    svc.fetch("partner")
    item = _case_item(core, md5, 3)
    core.cases.decide(item, "confirm", classification="B1", reviewer="rita")
    source.fail_opinions = 100
    for _ in range(12):
        svc.deliver_opinions()
        clock.advance(7 * 3600)
    assert svc.status("partner").pending_opinions == 0
    assert source.sent == []


def test_a_failing_listener_never_fails_the_decision(core: Amparo) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("listener bug")

    core.cases.on_decision(broken)
    bank = "local"
    from amparo.banks.model import BankInfo, EntryRecord

    core.banks.create(BankInfo(bank))
    core.store.banks.add_entries(bank, [EntryRecord("md5", "a" * 32)], actor="t")
    item = _case_item(core, "a" * 32, 4)
    decision = core.cases.decide(item, "confirm", classification="A2", reviewer="rita")
    assert decision.kind == "confirm"
    assert core.cases.item(item).decision is not None
