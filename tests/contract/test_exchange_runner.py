"""The fetch runner and the collaborations service, on SQLite and PostgreSQL, against a
scripted exchange (``fake_exchange.py``): batches committed with their checkpoints, deletions
and withdrawals soft-removing entries, quarantine, crash recovery, convergence without
churn, one fetcher per collaboration across processes, federation loops skipped."""

from __future__ import annotations

import json
import queue
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from fake_exchange import KIND, SOURCES, FakeSource, provenance

from amparo.app import Amparo
from amparo.config import Settings, load_settings
from amparo.errors import ConflictError, CredentialsError, InputError, NotFoundError
from amparo.exchanges.credentials import load_credentials
from amparo.exchanges.http import RetryingClient
from amparo.exchanges.model import Batch, Collaboration, FetchResult, Malformed, Update
from amparo.exchanges.runner import lease_name
from amparo.exchanges.service import ExchangeService
from clocks import ManualClock


def _md5(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture
def core(settings: Settings) -> Iterator[Amparo]:
    with Amparo(replace(settings, organisation_id="org-b")) as amparo:
        yield amparo


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def _service(core: Amparo, clock: ManualClock) -> ExchangeService:
    return ExchangeService(
        core.settings,
        core.store,
        core.banks,
        clock=clock,
        http_factory=lambda: RetryingClient(sleep=lambda s: None),
    )


@pytest.fixture
def svc(core: Amparo, clock: ManualClock) -> ExchangeService:
    return _service(core, clock)


@pytest.fixture
def source() -> Iterator[FakeSource]:
    name = uuid.uuid4().hex
    SOURCES[name] = src = FakeSource()
    src.name = name  # type: ignore[attr-defined]
    yield src
    SOURCES.pop(name, None)


def _add(svc: ExchangeService, source: FakeSource, name: str = "partner", **kw: object) -> None:
    svc.add(
        Collaboration(
            name=name,
            exchange=KIND,
            bank=kw.pop("bank", "shared"),  # type: ignore[arg-type]
            settings={"source": source.name},  # type: ignore[attr-defined]
            **kw,  # type: ignore[arg-type]
        ),
        actor="curator",
    )


def _signals(core: Amparo, bank: str = "shared") -> dict[str, str | None]:
    """signal -> source id of the bank's live entries."""
    return {e.signal: e.source_id for e in core.store.banks.iter_entries(bank)}


def _matches(core: Amparo, signal: str) -> int:
    return len(core.checks.match_signals([("md5", signal)])[0])


def test_full_fetch_then_incremental_from_the_checkpoint(
    core: Amparo, svc: ExchangeService, source: FakeSource
) -> None:
    for n in range(5):
        source.put(f"r{n}", _md5(n), category="A1", tags=("t",))
    _add(svc, source)
    first = svc.fetch("partner")
    assert first.fetched and first.error is None and first.full
    assert (first.batches, first.upserts, first.added, first.removed) == (3, 5, 5, 0)
    assert _signals(core) == {_md5(n): f"r{n}" for n in range(5)}
    assert _matches(core, _md5(3)) == 1
    status = svc.status("partner")
    assert status.records == 5 and status.entries_added == 5 and status.last_error is None
    assert status.checkpoint is not None and status.checkpoint["cursor"] == 5
    assert status.last_fetch_at is not None and status.lag_seconds == 0

    source.put("r5", _md5(5))
    source.put("r6", _md5(6))
    second = svc.fetch("partner")
    assert not second.full and (second.upserts, second.added) == (2, 2)
    assert len(_signals(core)) == 7
    # Nothing new: the source answers "unchanged"; the check is recorded, nothing written.
    seq = core.store.changes.current_seq()
    third = svc.fetch("partner")
    assert third.batches == 1 and third.upserts == 0
    assert core.store.changes.current_seq() == seq
    fetches = core.store.audit_log.entries(100, "collaboration:partner", action="exchange.fetch")
    assert len(fetches) == 5 and fetches[0].details == {"unchanged": 1}
    assert fetches[-1].details["upserts"] == 2 and fetches[-1].details["full"] is True


def test_deletion_removes_the_entry_softly(
    core: Amparo, svc: ExchangeService, source: FakeSource
) -> None:
    source.put("keep", _md5(1))
    source.put("gone", _md5(2))
    _add(svc, source)
    svc.fetch("partner")
    entry_id = next(e for e in _views(core) if e.signal == _md5(2)).id
    seq = core.store.changes.current_seq()
    source.delete("gone")
    result = svc.fetch("partner")
    assert (result.deletions, result.removed) == (1, 1)
    view = core.store.banks.get_entries([entry_id])[entry_id]
    assert view.removed  # soft: still there, flagged, with a change-log position
    assert core.store.changes.current_seq() > seq
    assert any(r[0] == entry_id for r in core.store.changes.since(seq).removals)
    assert _matches(core, _md5(2)) == 0 and _matches(core, _md5(1)) == 1
    assert svc.status("partner").entries_removed == 1 and svc.status("partner").records == 1


def _views(core: Amparo) -> list:  # type: ignore[type-arg]
    ids = range(1, 10_000)
    return [v for v in core.store.banks.get_entries(ids).values() if not v.removed]


def test_a_record_that_changes_its_hash_frees_the_old_signal(
    core: Amparo, svc: ExchangeService, source: FakeSource
) -> None:
    source.put("r1", _md5(1))
    source.put("r2", _md5(7))
    source.put("r3", _md5(7))  # two records carry one signal
    _add(svc, source)
    svc.fetch("partner")
    source.put("r1", _md5(11))
    source.delete("r2")
    result = svc.fetch("partner")
    assert result.removed == 1  # md5(1) freed; md5(7) still carried by r3
    assert _signals(core) == {_md5(11): "r1", _md5(7): "r3"}
    assert _matches(core, _md5(1)) == 0 and _matches(core, _md5(11)) == 1


def test_a_malformed_record_is_quarantined_while_the_rest_lands(
    core: Amparo, svc: ExchangeService, source: FakeSource, clock: ManualClock
) -> None:
    source.put("good", _md5(1))
    source.put("bad", "not-a-hash")
    source.put("none", "")
    source.malformed = [Malformed("page 7 is not XML", raw="<<<" * 5000, retry={"page": "7"})]
    _add(svc, source)
    result = svc.fetch("partner")
    assert result.error is None and result.added == 1 and result.quarantined == 3
    items = svc.quarantined("partner")
    assert {i.record_id for i in items} == {"bad", "none", None}
    page = next(i for i in items if i.record_id is None)
    assert len(page.raw) == Malformed.MAX_RAW and page.attempts == 1
    assert svc.status("partner").quarantined == 3
    # A later valid update of the record resolves its quarantine; the page is retried once
    # it has waited exchange_quarantine_retry_seconds, and lands.
    source.put("bad", _md5(2))
    source.retries["7"] = Batch(updates=[Update("p7", "md5", _md5(70))])
    svc.fetch("partner")
    assert {i.record_id for i in svc.quarantined("partner")} == {"none", None}
    clock.advance(core.settings.exchange_quarantine_retry_seconds + 1)
    svc.fetch("partner")
    assert {i.record_id for i in svc.quarantined("partner")} == {"none"}
    assert set(_signals(core)) == {_md5(1), _md5(2), _md5(70)}


def test_a_fetch_that_dies_mid_way_resumes_without_loss_or_duplicates(
    core: Amparo, svc: ExchangeService, source: FakeSource
) -> None:
    _add(svc, source)
    svc.fetch("partner")  # empty list: checkpoint at cursor 0
    for n in range(8):
        source.put(f"r{n}", _md5(n))
    source.crash_after = 2  # dies after batch 2 of 4
    with pytest.raises(RuntimeError):
        svc.fetch("partner")
    status = svc.status("partner")
    assert status.records == 4 and status.checkpoint is not None
    assert status.checkpoint["cursor"] == 4 and "RuntimeError" in (status.last_error or "")
    assert status.lease_holder is None  # released: the next fetch need not wait
    again = svc.fetch("partner")
    assert again.error is None and again.upserts == 4 and again.added == 4
    assert sorted(_signals(core)) == [_md5(n) for n in range(8)]
    assert core.banks.get("shared").entry_count == 8
    assert svc.status("partner").entries_added == 8


def test_stale_checkpoint_refetches_everything_and_converges_without_churn(
    core: Amparo, svc: ExchangeService, source: FakeSource, clock: ManualClock
) -> None:
    source.checkpoint_ttl = 60
    for n in range(6):
        source.put(f"r{n}", _md5(n))
    _add(svc, source)
    svc.fetch("partner")
    source.unlist("r2")  # gone from the list without a deletion record
    source.put("r9", _md5(9))
    clock.advance(120)  # the checkpoint has expired
    result = svc.fetch("partner")
    assert result.full and result.removed == 1 and result.added == 1
    assert sorted(_signals(core)) == sorted(_md5(n) for n in (0, 1, 3, 4, 5, 9))
    # The same list again, fetched in full: no entry changes, no change-log position moves.
    seq = core.store.changes.current_seq()
    entries = {e.id: e for e in _views(core)}
    same = svc.fetch("partner", full=True)
    assert same.full and same.added == 0 and same.removed == 0 and same.upserts == 6
    assert core.store.changes.current_seq() == seq
    assert {e.id: e for e in _views(core)} == entries


def test_a_full_fetch_interrupted_continues_and_withdraws_at_its_end(
    core: Amparo, svc: ExchangeService, source: FakeSource
) -> None:
    for n in range(6):
        source.put(f"r{n}", _md5(n))
    _add(svc, source)
    svc.fetch("partner")
    source.unlist("r0")
    source.unlist("r5")
    source.crash_after = 1
    with pytest.raises(RuntimeError):
        svc.fetch("partner", full=True)
    assert len(_signals(core)) == 6  # nothing withdrawn before the listing completes
    result = svc.fetch("partner")  # continues the listing from its checkpoint
    assert result.removed == 2
    assert sorted(_signals(core)) == [_md5(n) for n in range(1, 5)]


def test_big_batches_are_split_and_the_checkpoint_goes_with_the_last_part(
    settings: Settings, source: FakeSource, clock: ManualClock
) -> None:
    with Amparo(replace(settings, exchange_batch_size=3)) as core:
        svc = _service(core, clock)
        source.page = 10
        for n in range(7):
            source.put(f"r{n}", _md5(n))
        _add(svc, source)
        result = svc.fetch("partner")
        assert result.batches == 3 and result.added == 7
        audits = core.store.audit_log.entries(100, action="exchange.fetch")
        assert [a.details["upserts"] for a in audits] == [1, 3, 3]
        # Only the last part stored the checkpoint: the first two parts kept the old one.
        assert svc.status("partner").checkpoint["cursor"] == 7  # type: ignore[index]


def test_two_fetchers_started_at_once_fetch_once(settings: Settings, source: FakeSource) -> None:
    with Amparo(settings) as a, Amparo(settings) as b:
        svc_a, svc_b = (ExchangeService(x.settings, x.store, x.banks) for x in (a, b))
        for n in range(4):
            source.put(f"r{n}", _md5(n))
        _add(svc_a, source)
        source.gate = threading.Event()
        barrier = threading.Barrier(2)
        results: queue.Queue[FetchResult | BaseException] = queue.Queue()

        def run(svc: ExchangeService, holder: str) -> None:
            barrier.wait(10)
            try:
                results.put(svc.fetch("partner", holder=holder))
            except BaseException as exc:  # surfaced by the assertions below
                results.put(exc)

        threads = [
            threading.Thread(target=run, args=(s, h)) for s, h in ((svc_a, "a"), (svc_b, "b"))
        ]
        for t in threads:
            t.start()
        loser = results.get(timeout=20)
        assert isinstance(loser, FetchResult) and not loser.fetched
        assert source.entered.wait(10)
        holder = svc_a.status("partner").lease_holder
        assert holder in ("a", "b") and holder != loser.collaboration
        source.gate.set()
        winner = results.get(timeout=20)
        for t in threads:
            t.join(10)
        assert isinstance(winner, FetchResult) and winner.fetched and winner.added == 4
        assert source.fetches == 1
        assert svc_b.status("partner").lease_holder is None


def test_an_expired_lease_is_taken_over(
    core: Amparo, svc: ExchangeService, source: FakeSource, clock: ManualClock
) -> None:
    source.put("r1", _md5(1))
    _add(svc, source)
    # A fetcher that died holding the lease.
    dead = svc.leases.acquire(lease_name("partner"), "dead-host:1", 120)
    assert dead is not None
    assert svc.status("partner").lease_holder == "dead-host:1"
    assert not svc.fetch("partner").fetched
    clock.advance(121)
    assert svc.status("partner").lease_holder is None
    result = svc.fetch("partner", holder="alive")
    assert result.fetched and result.added == 1
    # The dead holder, waking up, can neither renew nor release the new holder's lease.
    assert not svc.leases.renew(lease_name("partner"), dead, 120)


def test_entries_that_came_round_a_federation_loop_are_skipped(
    core: Amparo, svc: ExchangeService, source: FakeSource
) -> None:
    source.put("ours", _md5(1), provenance=provenance("org-b", "org-a"))
    source.put("via-us", _md5(2), provenance=provenance("org-c", "org-b", "org-a"))
    source.put("theirs", _md5(3), provenance=provenance("org-a"))
    _add(svc, source)
    result = svc.fetch("partner")
    assert result.skipped_loops == 2 and result.added == 1
    assert set(_signals(core)) == {_md5(3)}


def test_source_errors_are_recorded_and_committed_batches_kept(
    core: Amparo, svc: ExchangeService, source: FakeSource, tmp_path: Path
) -> None:
    source.put("r1", _md5(1))
    _add(svc, source, credentials="env:AMPARO_SECRET_TEST_UNSET_VARIABLE")
    result = svc.fetch("partner")
    assert result.fetched and result.error and "AMPARO_SECRET_TEST_UNSET_VARIABLE" in result.error
    status = svc.status("partner")
    assert status.last_error == result.error and status.last_fetch_at is None
    assert status.last_attempt_at is not None and status.lease_holder is None
    secret = core.settings.home / "secrets" / "secret"
    secret.parent.mkdir()
    secret.write_text("s3cret\n")
    svc.update("partner", actor="curator", credentials=f"file:{secret}")
    assert svc.fetch("partner").error is None
    assert svc.status("partner").last_error is None
    text = json.dumps([e.details for e in _audit(core)])
    assert "s3cret" not in text


def _audit(core: Amparo) -> list:  # type: ignore[type-arg]
    return core.store.audit_log.entries(1000)


def test_collaborations_are_managed_and_fetched_on_schedule(
    core: Amparo, svc: ExchangeService, source: FakeSource, clock: ManualClock
) -> None:
    source.put("r1", _md5(1))
    with pytest.raises(InputError):
        svc.add(Collaboration("x", "no-such-exchange", "b"), actor="c")
    with pytest.raises(InputError):
        svc.add(Collaboration("-bad", KIND, "b", settings={"source": "s"}), actor="c")
    with pytest.raises(InputError):
        svc.add(Collaboration("x", KIND, "b", settings={}), actor="c")
    with pytest.raises(InputError):
        svc.add(
            Collaboration("x", KIND, "b", settings={"source": "s"}, credentials="hunter2"),
            actor="c",
        )
    _add(svc, source, interval_seconds=600)
    with pytest.raises(ConflictError):
        _add(svc, source)
    bank = core.banks.get("shared")
    assert bank.source == f"exchange:{KIND}"
    fetched: list[FetchResult] = []
    svc.after_fetch(fetched.append)
    assert [r.collaboration for r in svc.fetch_due(clock())] == ["partner"]
    assert len(fetched) == 1 and fetched[0].added == 1 and fetched[0].bank == "shared"
    assert fetched[0].seq_from is not None
    assert len(core.store.changes.since(fetched[0].seq_from).upserts) == 1
    assert svc.fetch_due(clock.advance(300)) == []
    status = svc.status("partner")
    assert status.last_attempt_at is not None
    assert status.next_fetch_at == status.last_attempt_at + timedelta(seconds=600)
    svc.pause("partner", actor="c")
    assert svc.fetch_due(clock.advance(1000)) == []
    assert svc.status("partner").next_fetch_at is None
    svc.resume("partner", actor="c")
    assert len(svc.fetch_due(clock())) == 1
    assert len(fetched) == 1  # nothing changed: no after-fetch callback
    changed = svc.update("partner", actor="c", interval_seconds=60, feedback=False)
    assert changed.interval_seconds == 60 and not changed.feedback
    with pytest.raises(InputError):
        svc.update("partner", actor="c", bank="other")
    assert [s.collaboration.name for s in svc.list()] == ["partner"]
    svc.remove("partner", actor="c", keep_entries=False)
    with pytest.raises(NotFoundError):
        svc.status("partner")
    assert _signals(core) == {}


def test_removing_a_collaboration_keeps_its_entries_by_default(
    core: Amparo, svc: ExchangeService, source: FakeSource
) -> None:
    source.put("r1", _md5(1))
    _add(svc, source)
    svc.fetch("partner")
    svc.remove("partner", actor="c")
    assert set(_signals(core)) == {_md5(1)}
    # Deleting the bank deletes the collaborations feeding it.
    _add(svc, source, name="again")
    core.banks.delete("shared", actor="c")
    assert svc.list() == []


def test_credentials_by_reference(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"home": tmp_path / "home"})
    assert load_credentials(None, settings) is None
    secrets = tmp_path / "home" / "secrets"
    secrets.mkdir(parents=True)
    token = secrets / "token"
    token.write_text("  abc123\n")
    assert load_credentials(f"file:{token}", settings).values == {"token": "abc123"}  # type: ignore[union-attr]
    pair = secrets / "pair.json"
    pair.write_text('{"user": "u", "password": "p"}')
    assert load_credentials(f"file:{pair}", settings).values == {"user": "u", "password": "p"}  # type: ignore[union-attr]
    env = {"AMPARO_SECRET_X": '{"token": "t"}', "AMPARO_SECRET_Y": "plain"}
    assert load_credentials("env:AMPARO_SECRET_X", settings, environ=env).values == {"token": "t"}  # type: ignore[union-attr]
    plain = load_credentials("env:AMPARO_SECRET_Y", settings, environ=env)
    assert plain is not None and plain.values == {"token": "plain"}
    with pytest.raises(CredentialsError):
        load_credentials("env:AMPARO_SECRET_UNSET", settings, environ=env)
    with pytest.raises(CredentialsError):
        load_credentials(f"file:{secrets / 'missing'}", settings)
    bad = secrets / "bad"
    bad.write_text("{not json secret")
    with pytest.raises(CredentialsError) as err:
        load_credentials(f"file:{bad}", settings)
    assert "not json" not in str(err.value)
    for ref in ("hunter2", "ftp:x", "env:", "env:A-B"):
        with pytest.raises(InputError) as bad_ref:
            load_credentials(ref, settings)
        assert "hunter2" not in str(bad_ref.value)


def test_credentials_cannot_name_amparos_own_secrets(tmp_path: Path) -> None:
    """An attacker with a curator key must not make the server read its own keys, its
    database password or cloud credentials and send them to a URL of their choosing."""
    settings = load_settings(env={}, overrides={"home": tmp_path / "home"})
    secrets = tmp_path / "home" / "secrets"
    secrets.mkdir(parents=True)
    outside = tmp_path / "home" / "keys" / "feed-signing.key"
    outside.parent.mkdir()
    outside.write_text("PRIVATE")
    (secrets / "link").symlink_to(outside)
    for ref in (
        f"file:{outside}",
        f"file:{secrets}/../keys/feed-signing.key",
        f"file:{secrets / 'link'}",
        "file:relative/path",
        "env:AMPARO_DATABASE_URL",
        "env:AWS_SECRET_ACCESS_KEY",
        "env:AMPARO_SECRET_",
    ):
        with pytest.raises(InputError) as refused:
            load_credentials(ref, settings, environ={"AWS_SECRET_ACCESS_KEY": "x"})
        assert "PRIVATE" not in str(refused.value) and refused.value.hint
    allowed = load_settings(
        env={},
        overrides={"home": tmp_path / "home", "exchange_credentials_dirs": str(outside.parent)},
    )
    assert load_credentials(f"file:{outside}", allowed).values == {"token": "PRIVATE"}  # type: ignore[union-attr]


def test_collaboration_urls_cannot_reach_private_addresses(tmp_path: Path) -> None:
    """A curator chooses a collaboration's URL: the server must not fetch its own metadata
    service or intranet for them (and show them the answer in an error)."""
    from amparo.errors import UrlRefusedError
    from amparo.exchanges.http import RetryingClient
    from amparo.url_policy import UrlPolicy

    settings = load_settings(env={}, overrides={"home": tmp_path / "home"})
    client = RetryingClient(policy=UrlPolicy.from_settings(settings), attempts=1)
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:5432/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "file:///etc/passwd",
    ):
        with pytest.raises(UrlRefusedError) as refused:
            client.get(url)
        assert refused.value.hint or "only http" in str(refused.value)
    with Amparo(settings) as core:
        core.exchanges.add(
            Collaboration(
                name="intranet",
                exchange="amparo",
                bank="from-intranet",
                settings={"url": "http://127.0.0.1:9", "feed": "x", "public_key": _pem()},
                credentials="env:AMPARO_SECRET_INTRANET",
            ),
            actor="curator",
        )
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AMPARO_SECRET_INTRANET", "amp_x_y")
            result = core.exchanges.fetch("intranet")
        assert result.error and "not a public address" in result.error
        assert core.exchanges.status("intranet").last_error == result.error


def _pem() -> str:
    from amparo.exchanges.signing import FeedSigner

    return FeedSigner(Path(tempfile.mkdtemp()) / "k.key").public_pem()
