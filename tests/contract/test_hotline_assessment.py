"""Analysts' assessment of unknown hotline items, on SQLite and PostgreSQL: the report moves
on with its items, media assessed not illegal is kept only briefly, national assessments name
a known jurisdiction, and a confirmed item can be proposed to a bank. Benign PIL-made images."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from PIL import Image

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.clock import utc_now
from amparo.config import Settings
from amparo.errors import ConflictError, InputError
from amparo.hotline.model import HotlineItem, UrlReport
from hotline_support import unknown_item as preserved_unknown

ANALYST = "key:analyst"


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, organisation_id="hotline-test")) as core:
        core.banks.create(BankInfo(name="outgoing"))
        yield core


def png(seed: int) -> bytes:
    """A benign synthetic picture: coloured stripes, different per seed."""
    image = Image.new("RGB", (64, 48), (seed * 37 % 256, 90, 200))
    for x in range(0, 64, 8):
        for y in range(48):
            image.putpixel((x + seed % 8, y), (255, (seed * 11) % 256, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def report(amparo: Amparo, path: str = "page") -> UrlReport:
    ctx = amparo.hotline.context
    url = f"https://host.example/{path}"
    opened, _ = ctx.records.submit(
        url, url.removeprefix("https://"), "host.example", at=utc_now(), channel="cli"
    )
    return ctx.records.update(opened.id, at=utc_now(), status="assessment")


def unknown_item(amparo: Amparo, report_id: int, seed: int) -> HotlineItem:
    media_url = f"https://host.example/media/{seed}.png"
    return preserved_unknown(amparo, report_id, png(seed), media_url=media_url)


def audit(amparo: Amparo, action: str) -> list[dict[str, object]]:
    """Details of the audit entries of ``action``, oldest first."""
    return [e.details for e in reversed(amparo.audit.entries(200, action=action))]


def test_baseline_confirms_the_report(amparo: Amparo) -> None:
    assessments = amparo.hotline.assessments
    opened = report(amparo)
    item = unknown_item(amparo, opened.id, 1)
    assert [i.id for i in assessments.waiting()] == [item.id]
    done = assessments.assess(item.id, "baseline", actor=ANALYST, note=" plain ")
    assert (done.status, done.assessment, done.jurisdiction) == ("assessed", "baseline", None)
    assert done.assessed_by == ANALYST and done.assessed_at is not None and done.note == "plain"
    assert done.confirmed
    moved = amparo.hotline.records.get(opened.id)
    assert moved.status == "confirmed" and moved.next_notice_at is not None
    assert assessments.waiting() == []
    (entry,) = audit(amparo, "hotline.assess")
    assert entry["item"] == item.id and entry["assessment"] == "baseline"
    assert entry["report_status"] == "confirmed"
    # Confirmed media keeps its retention.
    held = amparo.evidence.get(item.evidence_id or 0)
    assert held.expires_at is not None and held.expires_at > utc_now() + timedelta(days=80)


def test_not_illegal_closes_the_report_and_shortens_retention(amparo: Amparo) -> None:
    assessments = amparo.hotline.assessments
    opened = report(amparo)
    first = unknown_item(amparo, opened.id, 2)
    second = unknown_item(amparo, opened.id, 3)
    assessments.assess(first.id, "not_illegal", actor=ANALYST)
    # One item still waits: the report waits too.
    assert amparo.hotline.records.get(opened.id).status == "assessment"
    assessments.assess(second.id, "not_illegal", actor=ANALYST)
    assert amparo.hotline.records.get(opened.id).status == "closed"
    days = amparo.settings.hotline_not_illegal_retention_days
    for item in (first, second):
        kept = amparo.evidence.get(item.evidence_id or 0)
        assert kept.expires_at is not None
        assert kept.expires_at <= utc_now() + timedelta(days=days, minutes=1)
    assert len(audit(amparo, "evidence.retention")) == 2
    # Shortening never lengthens: a longer "shortening" leaves the expiry as it is.
    short = amparo.evidence.get(first.evidence_id or 0).expires_at
    amparo.evidence.expire_in(first.evidence_id or 0, 30, actor=ANALYST, reason="test")
    assert amparo.evidence.get(first.evidence_id or 0).expires_at == short
    assert len(audit(amparo, "evidence.retention")) == 2
    assert audit(amparo, "hotline.assess")[-1]["report_status"] == "closed"
    # Assessed again, illegal after all: the closed report opens again and its notice is due.
    assessments.assess(second.id, "baseline", actor=ANALYST)
    reopened = amparo.hotline.records.get(opened.id)
    assert reopened.status == "confirmed" and reopened.next_notice_at is not None


def test_a_confirmed_item_keeps_the_report_confirmed(amparo: Amparo) -> None:
    assessments = amparo.hotline.assessments
    opened = report(amparo)
    illegal = unknown_item(amparo, opened.id, 4)
    benign = unknown_item(amparo, opened.id, 5)
    assessments.assess(illegal.id, "national", actor=ANALYST, jurisdiction="mx")
    assessments.assess(benign.id, "not_illegal", actor=ANALYST)
    assert amparo.hotline.records.get(opened.id).status == "confirmed"
    assert amparo.hotline.records.item(illegal.id).jurisdiction == "MX"


def test_national_needs_a_known_jurisdiction(amparo: Amparo) -> None:
    assessments = amparo.hotline.assessments
    item = unknown_item(amparo, report(amparo).id, 6)
    with pytest.raises(InputError, match="no jurisdiction"):
        assessments.assess(item.id, "national", actor=ANALYST)
    with pytest.raises(InputError, match="not a known jurisdiction") as unknown:
        assessments.assess(item.id, "national", actor=ANALYST, jurisdiction="ZZ")
    assert unknown.value.hint and "BR" in unknown.value.hint and "MX" in unknown.value.hint
    with pytest.raises(InputError, match="only a national"):
        assessments.assess(item.id, "baseline", actor=ANALYST, jurisdiction="MX")
    with pytest.raises(InputError, match="not an assessment"):
        assessments.assess(item.id, "illegal", actor=ANALYST)
    with pytest.raises(InputError, match="4000"):
        assessments.assess(item.id, "baseline", actor=ANALYST, note="x" * 4001)
    # Nothing of the refused attempts was stored.
    assert amparo.hotline.records.item(item.id).status == "unknown"
    assert audit(amparo, "hotline.assess") == []
    done = assessments.assess(item.id, "national", actor=ANALYST, jurisdiction="BR")
    assert (done.assessment, done.jurisdiction) == ("national", "BR")


def test_verified_items_are_not_assessed_and_reassessment_restores_retention(
    amparo: Amparo,
) -> None:
    assessments = amparo.hotline.assessments
    opened = report(amparo)
    verified, _ = amparo.hotline.records.add_item(
        opened.id,
        media_url="https://host.example/known.png",
        sha256="ab" * 32,
        status="verified",
        at=utc_now(),
        assessment="baseline",
    )
    with pytest.raises(ConflictError, match="verified"):
        assessments.assess(verified.id, "not_illegal", actor=ANALYST)
    item = unknown_item(amparo, opened.id, 7)
    assessments.assess(item.id, "not_illegal", actor=ANALYST)
    # A verified item confirms the report once every item is decided.
    assert amparo.hotline.records.get(opened.id).status == "confirmed"
    short = amparo.evidence.get(item.evidence_id or 0).expires_at
    again = assessments.assess(item.id, "baseline", actor="key:second-analyst")
    assert again.assessed_by == "key:second-analyst" and again.assessment == "baseline"
    restored = amparo.evidence.get(item.evidence_id or 0).expires_at
    assert short is not None and restored is not None and restored > short + timedelta(days=30)
    assert audit(amparo, "hotline.assess")[-1]["previous"] == "not_illegal"


def test_propose_a_confirmed_item_to_a_bank(amparo: Amparo) -> None:
    assessments = amparo.hotline.assessments
    opened = report(amparo)
    item = unknown_item(amparo, opened.id, 8)
    with pytest.raises(ConflictError, match="not assessed illegal"):
        assessments.propose(item.id, "outgoing", actor=ANALYST, classification="A2")
    assessments.assess(item.id, "national", actor=ANALYST, jurisdiction="GT")
    with pytest.raises(InputError, match="classification"):
        assessments.propose(item.id, "outgoing", actor=ANALYST)
    proposal = assessments.propose(
        item.id, "outgoing", actor=ANALYST, note="hotline find", classification="a2"
    )
    assert (proposal.state, proposal.bank, proposal.jurisdiction) == ("pending", "outgoing", "GT")
    assert proposal.note == "hotline find" and proposal.proposed_by == ANALYST
    assert [p.id for p in amparo.proposals.list()] == [proposal.id]
    # The case item the share-back path works on: the hotline item's content and copy,
    # confirmed by the analyst with the classification chosen.
    case_item = amparo.cases.item(proposal.item_id)
    assert case_item.sha256 == item.sha256 and case_item.evidence_id == item.evidence_id
    assert case_item.decision is not None and case_item.decision.classification == "A2"
    assert case_item.matches == ()
    (entry,) = audit(amparo, "hotline.propose")
    assert entry["proposal"] == proposal.id and entry["case_item"] == case_item.id
    # Nothing is published before a curator approves; once approved, the hashes are.
    assert list(amparo.store.banks.iter_entries("outgoing")) == []
    amparo.proposals.approve(proposal.id, actor="key:curator")
    published = {e.signal_type: e.signal for e in amparo.store.banks.iter_entries("outgoing")}
    assert published["sha256"] == item.sha256 and "pdq" in published
    # Once that one is decided the item may be proposed again; a second pending proposal
    # in the same bank is refused by the share-back path.
    second = assessments.propose(item.id, "outgoing", actor=ANALYST, classification="A2")
    with pytest.raises(ConflictError):
        assessments.propose(item.id, "outgoing", actor=ANALYST, classification="A2")
    assert second.state == "pending"
