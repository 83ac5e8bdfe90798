"""Cases, decisions, exposure and false-positive control, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from amparo.app import Amparo
from amparo.banks.model import BankInfo, EntryRecord
from amparo.clock import as_utc
from amparo.config import Settings
from amparo.errors import AmparoError, ConflictError, ExposureLimitError, InputError, NotFoundError
from amparo.events import MatchedContent, Source
from amparo.matching import Match, Query
from amparo.review import cases as review_cases
from amparo.review.cases import CaseService
from amparo.review.priority import merge_matches


@pytest.fixture
def amparo(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, review_daily_limit=2, review_fp_disable_after=3)) as core:
        yield core


def _sha(n: int) -> str:
    return f"{n:064x}"


def _find(
    sha: int,
    *matches: Match,
    at: datetime | None = None,
    **source: str,
) -> MatchedContent:
    return MatchedContent(
        sha256=_sha(sha),
        matches=matches or (Match("known", 1, "pdq", 10, category="A2"),),
        source=Source(**source),
        md5=f"{sha:032x}",
        size=1000 + sha,
        media_kind="photo",
        at=at or datetime.now(UTC),
    )


def test_same_content_extends_its_open_case(amparo: Amparo) -> None:
    cases = amparo.cases
    first = cases.open_or_extend(_find(1, Match("known", 1, "pdq", 12, category="B1")))
    again = cases.open_or_extend(
        _find(1, Match("known", 1, "pdq", 4, category="B1"), Match("other", 7, "md5", 0)),
        evidence_id=42,
        rule="csam-upload",
    )
    assert again == first
    view = cases.get(first)
    assert view.group == f"content:{_sha(1)}" and view.status == "open"
    (item,) = view.items
    assert item.sightings == 2 and item.evidence_id == 42
    assert [(m.bank, m.entry_id, m.distance) for m in item.matches] == [
        ("other", 7, 0),
        ("known", 1, 4),
    ]
    assert item.first_seen <= item.last_seen and item.first_seen.tzinfo is not None
    # Other content without a source group gets its own case.
    assert cases.open_or_extend(_find(2)) != first


def test_finds_of_one_account_or_scan_share_a_case(amparo: Amparo) -> None:
    cases = amparo.cases
    a = cases.open_or_extend(_find(1, account_id="u1", upload_id="p1", file_name="x.jpg"))
    b = cases.open_or_extend(_find(2, account_id="u1", upload_id="p2"))
    c = cases.open_or_extend(_find(3, account_id="u2"))
    s1 = cases.open_or_extend(_find(4, kind="scan", scan_id="run-7", path="/m/a.jpg"))
    s2 = cases.open_or_extend(_find(5, kind="scan", scan_id="run-7", path="/m/b.jpg"))
    assert a == b and c != a and s1 == s2 and s1 not in (a, c)
    view = cases.get(a)
    assert view.group == "account:u1"
    assert sorted(i.sha256 for i in view.items) == [_sha(1), _sha(2)]
    assert {i.source["upload_id"] for i in view.items} == {"p1", "p2"}
    assert cases.get(s1).group == "scan:run-7"
    # Content already in the account's case, seen from another account, extends that item.
    assert cases.open_or_extend(_find(2, account_id="u3")) == a
    assert next(i for i in cases.get(a).items if i.sha256 == _sha(2)).sightings == 2


def test_queue_orders_by_category_then_distance_then_age(amparo: Amparo) -> None:
    cases = amparo.cases
    old = datetime.now(UTC) - timedelta(hours=5)
    ids = {
        "b2": cases.open_or_extend(_find(1, Match("k", 1, "md5", 0, category="B2"))),
        "a1-far": cases.open_or_extend(_find(2, Match("k", 2, "pdq", 30, category="a1"))),
        "a1-near": cases.open_or_extend(_find(3, Match("k", 3, "pdq", 2, category="A1"))),
        "none": cases.open_or_extend(_find(4, Match("k", 4, "pdq", 0))),
        "a2": cases.open_or_extend(_find(5, Match("k", 5, "pdq", 9, category="A2"))),
        "a2-old": cases.open_or_extend(_find(6, Match("k", 6, "pdq", 9, category="A2"), at=old)),
    }
    order = [c.id for c in cases.queue()]
    expected = ["a1-near", "a1-far", "a2-old", "a2", "b2", "none"]
    assert order == [ids[k] for k in expected]
    assert cases.count() == 6
    assert [c.id for c in cases.queue(limit=2, offset=1)] == [ids["a1-far"], ids["a2-old"]]
    with pytest.raises(InputError):
        cases.queue("nonsense")


def test_decisions_move_cases_and_are_audited(amparo: Amparo) -> None:
    cases = amparo.cases
    case_id = cases.open_or_extend(_find(1, account_id="u"))
    cases.open_or_extend(_find(2, account_id="u"))
    first, second = cases.get(case_id).items
    with pytest.raises(InputError, match="needs a classification"):
        cases.decide(first.id, "confirm", reviewer="rita")
    with pytest.raises(InputError, match="'Z9' is not a valid classification") as invalid:
        cases.decide(first.id, "confirm", classification="Z9", reviewer="rita")
    assert invalid.value.hint is not None and "A1, A2, B1, B2" in invalid.value.hint
    with pytest.raises(InputError):
        cases.decide(first.id, "escalate", classification="A1", reviewer="rita")
    with pytest.raises(InputError):
        cases.decide(first.id, "delete", reviewer="rita")
    with pytest.raises(NotFoundError):
        cases.decide(999_999, "escalate", reviewer="rita")
    decision = cases.decide(
        first.id, "confirm", classification="a1", annotations=["x", " x ", ""], reviewer="rita"
    )
    assert decision.classification == "A1" and decision.annotations == ("x",)
    assert cases.get(case_id).status == "open"  # the second item still waits
    cases.decide(second.id, "escalate", note="needs a second look", reviewer="rita")
    assert cases.get(case_id).status == "escalated"
    assert [c.id for c in cases.queue("escalated")] == [case_id]
    cases.decide(second.id, "confirm", classification="B2", reviewer="sam", actor="key:sam")
    view = cases.get(case_id)
    assert view.status == "decided" and cases.queue() == []
    assert {i.decision.kind for i in view.items if i.decision} == {"confirm"}
    assert len(view.confirmed_items) == 2
    assert [d.kind for d in cases.history(second.id)] == ["escalate", "confirm"]
    audit = [a for a in amparo.audit.entries(50) if a.action == "case.decision"]
    assert [(a.actor, a.details["kind"]) for a in audit] == [
        ("key:sam", "confirm"),
        ("rita", "escalate"),
        ("rita", "confirm"),
    ]
    assert all(a.target == f"case:{case_id}" for a in audit)
    # A decided case does not take new finds: the account's next find opens a new case.
    assert cases.open_or_extend(_find(3, account_id="u")) != case_id


def test_reveals_are_logged_and_limited_per_day(amparo: Amparo) -> None:
    cases = amparo.cases
    # Only an item with a preserved copy can be revealed (the ids stand for stored copies).
    bare = cases.get(cases.open_or_extend(_find(9))).items[0].id
    with pytest.raises(NotFoundError):
        cases.record_reveal(bare, "rita")
    items = [
        cases.get(cases.open_or_extend(_find(n), evidence_id=100 + n)).items[0].id
        for n in (1, 2, 3)
    ]
    reveal = cases.record_reveal(items[0], "rita")
    assert reveal.exposure.revealed_today == 1 and reveal.until > datetime.now(UTC)
    assert cases.revealed_until(items[0], "rita") is not None
    assert cases.revealed_until(items[0], "sam") is None
    cases.record_reveal(items[0], "rita")  # the same item again: not counted twice
    cases.record_reveal(items[1], "rita")
    with pytest.raises(ExposureLimitError) as refused:
        cases.record_reveal(items[2], "rita")
    assert refused.value.hint and "break" in refused.value.hint
    assert cases.exposure("rita").revealed_today == 2 and cases.exposure("rita").remaining == 0
    cases.record_reveal(items[2], "sam")  # another reviewer has their own count
    assert cases.item(items[0]).viewed and cases.item(items[2]).viewed
    logged = [a for a in amparo.audit.entries(50) if a.action == "case.reveal"]
    assert len(logged) == 4 and {a.details["reviewer"] for a in logged} == {"rita", "sam"}


def _race(settings: Settings, n: int, work: Callable[[Amparo, int], object]) -> list[object]:
    """Run ``work`` in ``n`` threads at once, each with its own Amparo (own engine and
    connections, as separate processes would have); returns results and exceptions."""
    cores = [
        Amparo(replace(settings, review_daily_limit=2, review_fp_disable_after=3)) for _ in range(n)
    ]
    barrier = threading.Barrier(n)
    out: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(cores[i], i)
        except Exception as exc:  # collected for the assertions
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for core in cores:
        core.close()
    return out


def test_simultaneous_reports_of_new_content_make_one_case(
    amparo: Amparo, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Widen the window between "is this content in an open case?" and the insert, which
    # is where two unserialised reports would both open a case.
    def slow_merge(*args: Any) -> Any:
        time.sleep(0.05)
        return merge_matches(*args)

    monkeypatch.setattr(review_cases, "merge_matches", slow_merge)
    results = _race(settings, 6, lambda core, i: core.cases.open_or_extend(_find(77)))
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    (item,) = amparo.cases.get(int(results[0])).items  # type: ignore[call-overload]
    assert item.sightings == 6


def test_simultaneous_reveals_cannot_pass_the_daily_limit(
    amparo: Amparo, settings: Settings
) -> None:
    cases = amparo.cases
    items = [
        cases.get(cases.open_or_extend(_find(n), evidence_id=n)).items[0].id for n in range(10, 16)
    ]
    results = _race(settings, 6, lambda core, i: core.cases.record_reveal(items[i], "rita"))
    refused = [r for r in results if isinstance(r, ExposureLimitError)]
    assert len(refused) == 4 and len(results) - len(refused) == 2, results
    assert cases.exposure("rita").revealed_today == 2


def _digest(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def test_false_positives_disable_an_entry_until_a_curator_looks(amparo: Amparo) -> None:
    rng = random.Random(5)
    md5 = _digest(rng)
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.add_entries("known", [EntryRecord("md5", md5, category="B1")])
    (found,) = amparo.checks.match_signals([("md5", md5)])
    entry_id = found[0].entry_id
    cases = amparo.cases
    for n in range(3):
        item = cases.get(cases.open_or_extend(_find(n, *found))).items[0]
        cases.decide(item.id, "false_positive", reviewer="rita", actor="key:rita")
        cases.decide(item.id, "false_positive", reviewer="rita")  # a repeat counts once
        cases.decide(item.id, "escalate", reviewer="rita")
        cases.decide(item.id, "false_positive", reviewer="rita")  # and after another decision
        if n < 2:
            assert amparo.checks.match_signals([("md5", md5)]) == [found]
    assert cases.false_positive_counts([entry_id]) == {entry_id: 3}
    assert amparo.checks.match_signals([("md5", md5)]) == [[]]
    (waiting,) = cases.disabled_entries()
    assert (waiting.entry_id, waiting.bank, waiting.false_positives) == (entry_id, "known", 3)
    actions = [a.action for a in amparo.audit.entries(20)]
    assert "entry.disabled_pending_review" in actions and "entry.disable" in actions
    cases.reenable_entry(entry_id, actor="key:curator")
    assert cases.disabled_entries() == []
    assert amparo.checks.match_signals([("md5", md5)]) == [found]
    assert cases.false_positive_counts([entry_id]) == {entry_id: 0}
    assert amparo.audit.entries(1)[0].action == "entry.reenabled_after_review"
    with pytest.raises(NotFoundError):
        cases.reenable_entry(entry_id, actor="key:curator")


def test_negative_bank_suppresses_positive_matches(amparo: Amparo) -> None:
    rng = random.Random(9)
    benign, other = _digest(rng), _digest(rng)
    pdq = f"{rng.getrandbits(256):064x}"
    near = f"{int(pdq, 16) ^ 0b111:064x}"  # 3 bits away
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.create(BankInfo(name="benign", kind="negative"))
    assert amparo.banks.get("benign").kind == "negative"
    assert amparo.banks.get("known").kind == "positive"
    amparo.banks.add_entries(
        "known",
        [EntryRecord("md5", benign), EntryRecord("md5", other), EntryRecord("pdq", pdq)],
    )
    amparo.banks.add_entries("benign", [EntryRecord("md5", benign), EntryRecord("pdq", near)])
    signals = [("md5", benign), ("md5", other), ("pdq", pdq)]
    results = amparo.matcher.match([Query(signals={t: v}) for t, v in signals])
    assert results[0].matches == [] and [m.bank for m in results[0].suppressed] == ["known"]
    assert [m.bank for m in results[0].benign] == ["benign"]
    assert [m.bank for m in results[1].matches] == ["known"] and not results[1].suppressed
    assert results[2].matches == [] and results[2].benign[0].distance == 3
    # Choosing banks does not skip the negative ones.
    assert amparo.checks.match_signals([("md5", benign)], banks=["known"]) == [[]]
    # A disabled negative bank suppresses nothing; kind can be changed.
    amparo.banks.update("benign", enabled=False)
    assert [m.bank for m in amparo.checks.match_signals([("md5", benign)])[0]] == ["known"]
    amparo.banks.update("benign", enabled=True, kind="positive")
    assert {m.bank for m in amparo.checks.match_signals([("md5", benign)])[0]} == {
        "known",
        "benign",
    }
    with pytest.raises(InputError):
        amparo.banks.update("benign", kind="sideways")
    with pytest.raises(InputError):
        amparo.banks.create(BankInfo(name="x", kind="sideways"))


def test_video_match_details_are_kept_with_the_case(amparo: Amparo) -> None:
    from amparo.signals.vpdq_compare import TimeRange
    from amparo.video_matching import VideoMatchDetail

    detail = VideoMatchDetail(
        query_share=0.9,
        bank_share=0.85,
        query_ranges=(TimeRange(0.0, 12.5),),
        bank_ranges=(TimeRange(3.0, 15.5), TimeRange(20.0, 21.0)),
        query_frames=13,
        bank_frames=20,
    )
    found = Match("videos", 5, "vpdq", 10, category="A1", video=detail)
    case_id = amparo.cases.open_or_extend(_find(31, found))
    (stored,) = amparo.cases.get(case_id).items[0].matches
    assert stored == found


def test_a_false_positive_can_be_undone_and_its_copy_waits_out_the_grace(amparo: Amparo) -> None:
    """A false positive neither discards the preserved copy at once nor is final: the reviewer
    may undo it within review_undo_seconds (uncounting it), a re-confirm within the grace
    keeps the copy, and `evidence purge` discards it only once the grace has passed, with the
    audit entry at that discard."""
    rng = random.Random(9)
    md5 = _digest(rng)
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.add_entries("known", [EntryRecord("md5", md5, category="B1")])
    (found,) = amparo.checks.match_signals([("md5", md5)])
    entry_id = found[0].entry_id
    cases, evidence = amparo.cases, amparo.evidence
    grace = timedelta(seconds=amparo.settings.review_undo_seconds)
    kept = evidence.preserve(b"synthetic content 1", reason="test", actor="t")
    item = cases.get(cases.open_or_extend(_find(1, *found), evidence_id=kept.id)).items[0]

    cases.decide(item.id, "false_positive", reviewer="rita", actor="key:rita")
    assert evidence.get(kept.id).held  # not discarded by the keystroke
    assert cases.false_positive_counts([entry_id]) == {entry_id: 1}
    with pytest.raises(ConflictError, match="made by rita"):
        cases.undo(item.id, reviewer="sam")
    assert cases.undo(item.id, reviewer="rita", actor="key:rita") is None
    assert cases.item(item.id).status == "pending" and cases.history(item.id) == []
    assert cases.get(item.case_id).status == "open"
    assert cases.false_positive_counts([entry_id]) == {entry_id: 0}
    undone = amparo.store.audit_log.entries(action="case.decision_undone")
    assert [(e.actor, e.details["kind"], e.details["restored"]) for e in undone] == [
        ("key:rita", "false_positive", None)
    ]
    with pytest.raises(NotFoundError):
        cases.undo(item.id, reviewer="rita")

    # A re-confirm within the grace keeps the copy, for the report.
    cases.decide(item.id, "false_positive", reviewer="rita")
    cases.decide(item.id, "confirm", classification="B1", reviewer="rita")
    later = datetime.now(UTC) + grace + timedelta(seconds=1)
    assert evidence.purge(later).false_positives == []
    assert evidence.get(kept.id).held

    # Undoing the confirm brings the false positive back; the purge discards only after the
    # grace, and the discard is what the audit log records.
    assert cases.undo(item.id, reviewer="rita") is not None
    assert cases.item(item.id).decision.kind == "false_positive"  # type: ignore[union-attr]
    assert evidence.purge(dry_run=True).false_positives == []
    assert evidence.purge().false_positives == []
    assert evidence.get(kept.id).held and not amparo.store.audit_log.entries(
        action="evidence.discard"
    )
    assert evidence.purge(later, dry_run=True).false_positives == [kept.id]
    assert evidence.get(kept.id).held
    assert evidence.purge(later).false_positives == [kept.id]
    assert not evidence.get(kept.id).held
    (discarded,) = amparo.store.audit_log.entries(action="evidence.discard")
    assert discarded.target == f"evidence:{kept.id}"
    assert evidence.purge(later).false_positives == []

    # Past the grace, a decision is no longer undone (decide again instead).
    other = cases.get(cases.open_or_extend(_find(2, *found))).items[0]
    cases.decide(other.id, "escalate", reviewer="rita")
    past_grace = CaseService(
        amparo.settings, amparo.store, evidence, clock=lambda: later + timedelta(seconds=1)
    )
    with pytest.raises(ConflictError, match="undo grace"):
        past_grace.undo(other.id, reviewer="rita")
    assert cases.item(other.id).status == "escalated"


def test_a_shared_copy_waits_for_every_false_positive_grace(amparo: Amparo) -> None:
    """Two items relying on one preserved copy: it is discarded only when both false
    positives are past their undo grace (the later one may still be undone)."""
    cases, evidence = amparo.cases, amparo.evidence
    grace = timedelta(seconds=amparo.settings.review_undo_seconds)
    kept = evidence.preserve(b"synthetic shared content", reason="test", actor="t")
    a = cases.get(cases.open_or_extend(_find(3, account_id="a"), evidence_id=kept.id)).items[0]
    b = cases.get(cases.open_or_extend(_find(4, account_id="b"), evidence_id=kept.id)).items[0]
    cases.decide(a.id, "false_positive", reviewer="rita")
    cases.decide(b.id, "false_positive", reviewer="sam")
    (first,) = cases.history(a.id)
    (second,) = cases.history(b.id)
    assert second.at > first.at
    between = as_utc(first.at) + grace  # a's grace is over, b's is not
    assert cases.discard_false_positives(between, actor="t") == []
    assert evidence.get(kept.id).held
    after = as_utc(second.at) + grace
    assert cases.discard_false_positives(after, actor="t") == [kept.id]
    assert not evidence.get(kept.id).held


def test_undoing_the_false_positive_that_disabled_an_entry_enables_it_again(
    amparo: Amparo,
) -> None:
    rng = random.Random(11)
    md5 = _digest(rng)
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.add_entries("known", [EntryRecord("md5", md5, category="B1")])
    (found,) = amparo.checks.match_signals([("md5", md5)])
    entry_id = found[0].entry_id
    cases = amparo.cases
    items = [cases.get(cases.open_or_extend(_find(n, *found))).items[0] for n in range(3)]
    for item in items:
        cases.decide(item.id, "false_positive", reviewer="rita")
    assert amparo.checks.match_signals([("md5", md5)]) == [[]]  # disabled at the third
    cases.undo(items[-1].id, reviewer="rita")
    assert cases.disabled_entries() == []
    assert amparo.checks.match_signals([("md5", md5)]) == [found]
    assert cases.false_positive_counts([entry_id]) == {entry_id: 2}
    assert amparo.audit.entries(1)[0].action == "entry.reenabled_after_review"
    cases.decide(items[-1].id, "false_positive", reviewer="rita")  # counts again: disabled
    assert amparo.checks.match_signals([("md5", md5)]) == [[]]


def _commits(amparo: Amparo) -> list[int]:
    """A list that grows by one at every commit on the store's engine."""
    commits: list[int] = []
    event.listen(amparo.store.db.engine, "commit", lambda conn: commits.append(1))
    return commits


def _fail_on_call(amparo: Amparo, monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Make the ``n``-th enabling or disabling of bank entries from now on fail."""
    real = amparo.store.banks.set_entries_enabled
    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == n:
            raise AmparoError("the store failed", hint="none: a test")
        return real(*args, **kwargs)

    monkeypatch.setattr(amparo.store.banks, "set_entries_enabled", failing)


def test_a_decision_that_fails_part_way_leaves_nothing_behind(
    amparo: Amparo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision, its false-positive count and the entry it disables are one
    transaction: when disabling the entry (the last step) fails, none of it happened."""
    rng = random.Random(13)
    md5 = _digest(rng)
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.add_entries("known", [EntryRecord("md5", md5, category="B1")])
    (found,) = amparo.checks.match_signals([("md5", md5)])
    entry_id = found[0].entry_id
    cases = amparo.cases
    items = [cases.get(cases.open_or_extend(_find(n, *found))).items[0] for n in range(3)]
    commits = _commits(amparo)
    for item in items[:2]:
        cases.decide(item.id, "false_positive", reviewer="rita")
    assert len(commits) == 2  # one transaction each
    audited = len(amparo.store.audit_log.entries(1000))

    _fail_on_call(amparo, monkeypatch, 1)
    with pytest.raises(AmparoError, match="the store failed"):
        cases.decide(items[2].id, "false_positive", reviewer="rita")
    assert cases.history(items[2].id) == [] and cases.item(items[2].id).status == "pending"
    assert cases.false_positive_counts([entry_id]) == {entry_id: 2}
    assert cases.disabled_entries() == []
    assert amparo.checks.match_signals([("md5", md5)]) == [found]
    assert len(amparo.store.audit_log.entries(1000)) == audited

    monkeypatch.undo()
    commits.clear()
    cases.decide(items[2].id, "false_positive", reviewer="rita")
    assert len(commits) == 1
    assert [e.entry_id for e in cases.disabled_entries()] == [entry_id]
    assert amparo.checks.match_signals([("md5", md5)]) == [[]]
    assert [e.action for e in amparo.store.audit_log.entries(3)] == [
        "entry.disable",
        "entry.disabled_pending_review",
        "case.decision",
    ]


def test_enabling_many_entries_again_is_one_transaction(
    amparo: Amparo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Undoing the false positive that disabled several entries enables them all in one
    transaction with the undo: a failure at the second leaves every one disabled and the
    decision in place."""
    rng = random.Random(17)
    md5s = [_digest(rng) for _ in range(3)]
    amparo.banks.create(BankInfo(name="known"))
    amparo.banks.add_entries("known", [EntryRecord("md5", m, category="B1") for m in md5s])
    found = [m[0] for m in amparo.checks.match_signals([("md5", m) for m in md5s])]
    cases = amparo.cases
    items = [cases.get(cases.open_or_extend(_find(n, *found))).items[0] for n in range(3)]
    for item in items:
        cases.decide(item.id, "false_positive", reviewer="rita")
    disabled = sorted(e.entry_id for e in cases.disabled_entries())
    assert disabled == sorted(m.entry_id for m in found)
    audited = len(amparo.store.audit_log.entries(1000))

    _fail_on_call(amparo, monkeypatch, 2)
    with pytest.raises(AmparoError, match="the store failed"):
        cases.undo(items[-1].id, reviewer="rita")
    assert sorted(e.entry_id for e in cases.disabled_entries()) == disabled
    assert amparo.checks.match_signals([("md5", m) for m in md5s]) == [[], [], []]
    assert [d.kind for d in cases.history(items[-1].id)] == ["false_positive"]
    assert cases.false_positive_counts(disabled) == {e: 3 for e in disabled}
    assert len(amparo.store.audit_log.entries(1000)) == audited

    monkeypatch.undo()
    commits = _commits(amparo)
    assert cases.undo(items[-1].id, reviewer="rita") is None
    assert len(commits) == 1
    assert cases.disabled_entries() == []
    assert amparo.checks.match_signals([("md5", m) for m in md5s]) == [[m] for m in found]
