"""The ``amparo`` exchange: subscribe to another Amparo installation's feed.

Each page is fetched with a fresh random nonce and checked before anything of it is yielded:
the Ed25519 signature over the page's canonical JSON with the publisher key the
collaboration pinned (another key, or one altered byte, fails), the nonce echoed (an older
page replayed for a new request carries another), the cursor echoed (a page for another
position) and the feed's name. A page that fails raises :class:`FeedVerificationError`:
the runner records the error and applies nothing of it; the next fetch asks again from the
last committed checkpoint.

Every request also carries ``ack``: the cursor this subscriber last committed, which the
publisher records per grant (how it knows its withdrawals were applied).

Entries carry their provenance with the publisher appended to the path; the runner skips an
entry whose path already names this installation (no A -> B -> A loops). Pure: no storage.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from amparo.errors import CredentialsError, ExchangeError, FeedVerificationError, InputError
from amparo.exchanges.base import Exchange, register
from amparo.exchanges.feed_model import FeedCursor
from amparo.exchanges.model import Batch, Checkpoint, Malformed, Opinion, Provenance, Update
from amparo.exchanges.signing import (
    FeedSigner,
    key_id,
    load_public_key,
    organisation_id,
    public_key_pem,
    verify,
)
from amparo.names import validate_name

_HINT = (
    "nothing of the page was applied; if the publisher rotated its key, pin the new one "
    "(amparo exchange remove + amparo feeds subscribe with its `amparo feeds key`)"
)


@dataclass
class AmparoCheckpoint(Checkpoint):
    """The feed cursor after the last committed page (``seq.id``)."""

    cursor: str = "0.0"
    full: bool = False
    """A full fetch (from the beginning) is under way: its remaining pages are full too, so
    the runner withdraws what it did not list once the last one lands."""


@register
class AmparoFeedExchange(Exchange):
    """A feed published by another Amparo installation (signed pages, pinned key)."""

    kind = "amparo"
    description = "another Amparo's published feed: signed pages, provenance, opinions back"
    checkpoint_type = AmparoCheckpoint
    supports_feedback = True
    needs_credentials = True

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - {"url", "feed", "public_key", "page_size"})
        if unknown:
            raise InputError(
                f"the amparo exchange does not know the settings {', '.join(unknown)}",
                hint="settings: url, feed, public_key (PEM), page_size (optional)",
            )
        url = settings.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(
                "the amparo exchange needs the publisher's base URL (http:// or https://)",
                hint="e.g. https://amparo.hotline-a.example",
            )
        feed = validate_name(settings.get("feed"), "feed")
        pem = settings.get("public_key")
        if not isinstance(pem, str):
            raise InputError(
                "the amparo exchange needs the publisher's public key (PEM) to pin",
                hint="ask the publisher for the output of `amparo feeds key`",
            )
        key = load_public_key(pem, what="the publisher's public key")
        out: dict[str, Any] = {
            "url": str(url).rstrip("/"),
            "feed": feed,
            "public_key": public_key_pem(key),
        }
        if settings.get("page_size") is not None:
            size = settings["page_size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise InputError("page_size must be a positive integer")
            out["page_size"] = size
        return out

    # -- fetching ---------------------------------------------------------------------------

    @property
    def pinned(self) -> Any:
        return load_public_key(self.settings["public_key"], what="the publisher's public key")

    def _headers(self) -> dict[str, str]:
        values = self.credentials.values if self.credentials else {}
        # {"token": ...}, or a bare secret (whatever name the loader gives a lone value).
        token = values.get("token") or (next(iter(values.values())) if len(values) == 1 else "")
        if not token:
            raise CredentialsError(
                "the amparo exchange needs the partner API key the publisher created for you",
                hint='give it as {"token": "..."} (or the bare key) in the credentials file or '
                "environment variable",
            )
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def _entries_url(self) -> str:
        return f"{self.settings['url']}/v1/feeds/{quote(self.settings['feed'], safe='')}"

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        cursor = checkpoint.cursor if isinstance(checkpoint, AmparoCheckpoint) else "0.0"
        FeedCursor.parse(cursor)  # a corrupt checkpoint fails here, not at the publisher
        pinned = self.pinned
        headers = self._headers()
        what = f"the publisher of feed {self.settings['feed']!r}"
        # From the beginning, the fetch is a full one: what it does not list is withdrawn.
        full = cursor == "0.0" or (isinstance(checkpoint, AmparoCheckpoint) and checkpoint.full)
        while True:
            nonce = secrets.token_urlsafe(24)
            params: dict[str, Any] = {"cursor": cursor, "nonce": nonce, "ack": cursor}
            if "page_size" in self.settings:
                params["limit"] = self.settings["page_size"]
            response = self.context.http.get(
                self._entries_url(), params=params, headers=headers, what=what, ok=(200, 400)
            )
            if response.status_code == 400:
                if cursor != "0.0" and _from_the_future(response):
                    # The publisher's change log is behind our checkpoint (its database was
                    # restored from a backup): the checkpoint is stale, so fetch everything
                    # again and withdraw what the publisher no longer lists.
                    cursor, full = "0.0", True
                    continue
                raise ExchangeError(
                    f"{what} refused the request: {_error_text(response)}",
                    hint="check the collaboration's settings (feed name, page_size)",
                )
            page = self.verified_page(response.content, nonce=nonce, cursor=cursor, key=pinned)
            updates, malformed = self.parse_entries(page["entries"])
            next_cursor = str(page["next_cursor"])
            last = not page["more"] or next_cursor == cursor
            yield Batch(
                updates=updates,
                malformed=malformed,
                checkpoint=AmparoCheckpoint(
                    cursor=next_cursor, full=full and not last, fetched_at=Checkpoint.now()
                ),
                full=full,
                complete=full and last,
            )
            if last:
                return
            cursor = next_cursor

    def verified_page(self, body: bytes, *, nonce: str, cursor: str, key: Any) -> dict[str, Any]:
        """The page of a response body, once its signature, nonce, cursor and feed check
        out; :class:`FeedVerificationError` otherwise."""
        feed = self.settings["feed"]
        try:
            envelope = json.loads(body)
        except ValueError:
            raise FeedVerificationError(
                f"a page of feed {feed!r} is not valid JSON (altered in transit?)", hint=_HINT
            ) from None
        if not isinstance(envelope, dict) or not isinstance(envelope.get("page"), dict):
            raise FeedVerificationError(f"a page of feed {feed!r} has no 'page'", hint=_HINT)
        page: dict[str, Any] = envelope["page"]
        try:
            verify(key, page, envelope.get("signature"), what=f"a page of feed {feed!r}")
        except FeedVerificationError as exc:
            claimed = page.get("key_id")
            extra = (
                f" (the page names key {str(claimed)[:40]!r})"
                if claimed and claimed != key_id(key)
                else ""
            )
            raise FeedVerificationError(exc.message + extra, hint=_HINT) from None
        if page.get("nonce") != nonce:
            raise FeedVerificationError(
                f"a page of feed {feed!r} answers another request (nonce mismatch): a replayed "
                "page",
                hint=_HINT,
            )
        if page.get("cursor") != cursor:
            raise FeedVerificationError(
                f"a page of feed {feed!r} starts at {str(page.get('cursor'))[:40]!r}, not at the "
                f"requested cursor {cursor}: a replayed or misdirected page",
                hint=_HINT,
            )
        if page.get("feed") != feed:
            raise FeedVerificationError(
                f"the page is of feed {str(page.get('feed'))[:100]!r}, not {feed!r}", hint=_HINT
            )
        entries, more, next_cursor = page.get("entries"), page.get("more"), page.get("next_cursor")
        if not isinstance(entries, list) or not isinstance(more, bool):
            raise FeedVerificationError(f"a page of feed {feed!r} is malformed", hint=_HINT)
        try:
            if FeedCursor.parse(str(next_cursor)) < FeedCursor.parse(cursor):
                raise InputError("backwards")
        except InputError:
            raise FeedVerificationError(
                f"a page of feed {feed!r} has a bad next_cursor {str(next_cursor)[:40]!r}",
                hint=_HINT,
            ) from None
        return page

    @staticmethod
    def parse_entries(entries: list[Any]) -> tuple[list[Update], list[Malformed]]:
        """Updates of a verified page's entries; an entry that cannot be read is quarantined
        while the rest of the page lands."""
        updates: list[Update] = []
        malformed: list[Malformed] = []
        for item in entries:
            try:
                updates.append(_update(item))
            except (KeyError, TypeError, ValueError, InputError) as exc:
                record = item.get("id") if isinstance(item, dict) else None
                malformed.append(
                    Malformed(
                        reason=f"unreadable feed entry: {exc}",
                        raw=Malformed.cut(json.dumps(item, default=str)),
                        record_id=None if record is None else str(record),
                    )
                )
        return updates, malformed

    # -- opinions ---------------------------------------------------------------------------

    def send_opinion(self, opinion: Opinion) -> None:
        """POST the opinion to the publisher, signed with this installation's feed key (the
        publisher checks it against the key it pinned when granting the feed)."""
        signer = FeedSigner.of(self.context.settings)
        body = {
            "entry_id": int(opinion.record_id),
            "verdict": opinion.verdict,
            "reason": opinion.reason,
            "at": opinion.at or Checkpoint.now(),
            "partner": self.context.organisation or organisation_id(self.context.settings, signer),
        }
        self.context.http.post(
            f"{self.settings['url']}/v1/feeds/{quote(self.settings['feed'], safe='')}/opinions",
            json={"opinion": body, "signature": signer.sign(body), "key_id": signer.key_id},
            headers=self._headers(),
            ok=(200, 201),
            what=f"the publisher of feed {self.settings['feed']!r}",
        )


def _update(item: Any) -> Update:
    if not isinstance(item, dict):
        raise TypeError("not an object")
    record_id = item["id"]
    if not isinstance(record_id, int) or isinstance(record_id, bool):
        raise InputError(f"bad id {record_id!r}")
    signal_type, signal = item["signal_type"], item["signal"]
    if not isinstance(signal_type, str) or not isinstance(signal, str):
        raise InputError("signal_type and signal must be text")
    if item.get("deleted"):
        return Update(
            record_id=str(record_id), signal_type=signal_type, signal=signal, deleted=True
        )
    category = item.get("category")
    tags = item.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InputError("tags must be a list of text")
    raw_provenance = item.get("provenance")
    provenance = None
    if raw_provenance is not None:
        if not isinstance(raw_provenance, dict) or not isinstance(
            raw_provenance.get("origin"), str
        ):
            raise InputError("provenance must be an object with an origin")
        provenance = Provenance.from_json(raw_provenance)
    return Update(
        record_id=str(record_id),
        signal_type=signal_type,
        signal=signal,
        category=category if isinstance(category, str) else None,
        tags=tuple(tags),
        provenance=provenance,
    )


def _error_body(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _from_the_future(response: Any) -> bool:
    """Whether a 400 says our cursor is past the publisher's change log."""
    error = _error_body(response)
    return error.get("code") == "invalid_input" and "future" in str(error.get("message", ""))


def _error_text(response: Any) -> str:
    error = _error_body(response)
    message = str(error.get("message") or response.text[:200])
    return message[:300]
