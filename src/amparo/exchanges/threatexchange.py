"""Meta ThreatExchange privacy groups: the hashes members of a ThreatExchange privacy group
share, read through the Graph API's ``/{privacy_group}/threat_updates`` endpoint.

The HTTP API is the one python-threatexchange's client speaks
(``threatexchange/exchanges/clients/fb_threatexchange/api.py``, ``get_threat_updates``, and
``impl/fb_threatexchange_api.py``): ``GET {base}/{privacy_group}/threat_updates/`` with
``access_token``, ``start_time``, ``stop_time``, ``limit`` and ``fields``, answering
``data`` (indicators with ``id``, ``indicator``, ``type``, ``last_updated``,
``should_delete`` and their ``descriptors``) and ``paging.next`` (the next page's full URL).
Reactions go to ``POST {base}/{descriptor_id}`` with ``reactions=...``.

Why this module speaks the API itself instead of using ``ThreatExchangeAPI``:

* ``get_json_from_url`` calls ``requests.get`` instead of its retrying session (the source
  itself marks it "Typo?"): 429 and 5xx are not retried at all;
* a page the client cannot decode raises out of its cursor and the position is lost; Amparo
  must quarantine the page and continue;
* the cursor keeps the next URL, access token included, in memory only; Amparo commits the
  position with each batch, without the token.

What is reused is the client's semantics: the fields it asks for, ``should_delete`` *or* no
``descriptors`` as a deletion (its workaround for ThreatExchange issue #834), an indicator
whose descriptors all lack an owner as not visible (deleted), ``HELPFUL`` and
``DISAGREE_WITH_TAGS`` as the reactions that mean a positive and a negative opinion (what
``FBThreatExchangeIndicatorRecord.from_threatexchange_json`` reads back), and the 85-day
staleness (``FBThreatExchangeCheckpoint.is_stale``: tombstones are kept 90 days).
``tests/unit/test_exchange_threatexchange.py`` runs the client against the test fake, so the
fake stays faithful to what the client expects. No optional package is needed at run time.

Indicator types: ``HASH_PDQ`` is Amparo's ``pdq``; ``HASH_MD5``/``HASH_VIDEO_MD5``,
``HASH_SHA1`` and ``HASH_SHA256``/``HASH_VIDEO_SHA256`` are file digests (Amparo's ``md5``,
``sha1``, ``sha256``); every other type (``HASH_TMK``, ``URI``, ``DEBUG_STRING``...) is
counted as skipped, neither stored nor quarantined.

Checkpoint: the latest ``last_updated`` read (the next fetch's ``start_time``; updates come
in ``last_updated`` order) and the run's ``paging.next`` without the token, used while it is
younger than :data:`CURSOR_TTL`; a cursor the Graph API refuses is dropped and the run
restarts from the time. A page that cannot be read quarantines the window
``[t, t + skip_seconds)`` after the last update read (``retry`` holds ``start_time`` and
``stop_time``, which :meth:`ThreatExchangeExchange.refetch` reads again) and the fetch
continues after it, as the StopNCII exchange does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from amparo.errors import CredentialsError, ExchangeError, InputError
from amparo.exchanges.base import Exchange, register
from amparo.exchanges.http_settings import check_base_url, check_int
from amparo.exchanges.model import OPINION_VERDICTS, Batch, Checkpoint, Malformed, Opinion
from amparo.exchanges.skipping import PageSkipper, QuarantinedWindow
from amparo.exchanges.threatexchange_wire import (
    BASE_URL,
    DEFAULT_PAGE_SIZE,
    DEFAULT_SKIP_SECONDS,
    FIELDS,
    RATE_LIMIT_CODES,
    REACTIONS,
    TOKEN_ERROR_CODES,
    ThreatExchangeCheckpoint,
    graph_error,
    indicator_id,
    read_batch,
    read_page,
    split_url,
    strip_token,
)

# The exchange, and its checkpoint (kept importable from here); the wire format is in
# amparo.exchanges.threatexchange_wire.
__all__ = ["ThreatExchangeCheckpoint", "ThreatExchangeExchange"]

_SETTINGS = ("privacy_group", "base_url", "page_size", "skip_seconds")


@register
class ThreatExchangeExchange(Exchange):
    """A ThreatExchange privacy group (``threat_updates``; reactions as feedback)."""

    kind: ClassVar[str] = "threatexchange"
    description: ClassVar[str] = (
        "Meta ThreatExchange: a privacy group's hashes (PDQ, MD5, SHA-1, SHA-256) through "
        "/threat_updates, with deletions; reactions as feedback"
    )
    checkpoint_type: ClassVar[type[Checkpoint]] = ThreatExchangeCheckpoint
    supports_feedback: ClassVar[bool] = True
    needs_credentials: ClassVar[bool] = True

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """``privacy_group`` (required: the ThreatPrivacyGroup id), ``base_url`` (default
        the Graph API version the client uses), ``page_size`` (1..1000, default 500),
        ``skip_seconds`` (the window quarantined after an unreadable page)."""
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise InputError(
                f"the threatexchange exchange does not take {', '.join(unknown)}",
                hint="settings: privacy_group (required), base_url, page_size, skip_seconds",
            )
        group = settings.get("privacy_group")
        if isinstance(group, str) and group.strip().isdigit():
            group = int(group.strip())
        if isinstance(group, bool) or not isinstance(group, int) or group <= 0:
            raise InputError(
                "the threatexchange exchange needs the privacy group's id",
                hint='settings: {"privacy_group": 1234567890}',
            )
        return {
            "privacy_group": group,
            "base_url": check_base_url(settings.get("base_url", BASE_URL), BASE_URL),
            "page_size": check_int(settings, "page_size", DEFAULT_PAGE_SIZE, 1, 1000),
            "skip_seconds": check_int(
                settings, "skip_seconds", DEFAULT_SKIP_SECONDS, 1, 366 * 86_400
            ),
        }

    # -- credentials -----------------------------------------------------------------------

    def _token(self) -> str:
        """An app access token: ``access_token`` as issued (``app_id|secret`` or a token), or
        ``app_id`` and ``app_secret`` joined as the Graph API accepts them."""
        hint = (
            'the secret is {"access_token": "APP_ID|APP_SECRET"} or {"app_id": ..., '
            '"app_secret": ...}, from developers.facebook.com/tools/accesstoken'
        )
        if self.credentials is None:
            raise CredentialsError("the threatexchange exchange needs credentials", hint=hint)
        token = self.credentials.get("access_token") or self.credentials.get("token")
        if token:
            return token
        app_id = self.credentials.get("app_id")
        secret = self.credentials.get("app_secret")
        if app_id and secret:
            return f"{app_id}|{secret}"
        raise CredentialsError("the collaboration's credentials lack an access token", hint=hint)

    def _app_id(self) -> str | None:
        """This app's id: its own descriptors get no reaction from it."""
        if self.credentials is not None and self.credentials.get("app_id"):
            return self.credentials.get("app_id")
        prefix, bar, _ = self._token().partition("|")
        return prefix if bar and prefix.isdigit() else None

    # -- HTTP --------------------------------------------------------------------------------

    def _get(self, url: str, params: dict[str, Any]) -> httpx.Response:
        response = self._request(url, params, cursor=False)
        assert isinstance(response, httpx.Response)  # only a cursor is answered with a refusal
        return response

    def _request(self, url: str, params: dict[str, Any], *, cursor: bool) -> httpx.Response | str:
        """GET with the token added; Graph API errors (HTTP 400/403 with an ``error`` object)
        read as what they are: a bad token, throttling (retried with backoff), a plain
        failure, or, for a paging ``cursor``, a refusal (returned as its message: the run
        restarts from its time)."""
        http = self.context.http
        params = {**params, "access_token": self._token()}
        for attempt in range(1, http.attempts + 1):
            response = http.get(url, params=params, ok=(200, 400, 403), what="ThreatExchange")
            if response.status_code == 200:
                return response
            code, kind, message = graph_error(response)
            if code in RATE_LIMIT_CODES and attempt < http.attempts:
                http.retries += 1
                http.sleep(min(http.backoff_max, http.backoff * 2 ** (attempt - 1)))
                continue
            if code in TOKEN_ERROR_CODES or kind == "OAuthException" or response.status_code == 403:
                raise CredentialsError(
                    f"ThreatExchange refused the access token: {message}",
                    hint="check the collaboration's credentials (an app access token of an "
                    "app that is a member of the privacy group)",
                )
            if cursor:
                return message or "cursor refused"
            raise ExchangeError(
                f"ThreatExchange answered HTTP 400: {message}",
                hint="check the privacy group id and that the app is a member of it",
            )
        raise ExchangeError(
            f"ThreatExchange kept throttling ({http.attempts} tries)",
            hint="the next fetch resumes from the last committed batch",
        )

    def _updates_url(self) -> str:
        return f"{self.settings['base_url']}/{self.settings['privacy_group']}/threat_updates/"

    def _first_page(self, start: int | None, stop: int | None) -> httpx.Response:
        params: dict[str, Any] = {"limit": self.settings["page_size"], "fields": ",".join(FIELDS)}
        if start is not None:
            params["start_time"] = start
        if stop is not None:
            params["stop_time"] = stop
        return self._get(self._updates_url(), params)

    def _next_page(self, next_url: str) -> httpx.Response | str:
        """The page at a ``paging.next`` URL, or the refusal's message."""
        base, params = split_url(next_url)
        return self._request(base, params, cursor=True)

    # -- fetching ----------------------------------------------------------------------------

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        now = self.context.clock()
        previous = checkpoint if isinstance(checkpoint, ThreatExchangeCheckpoint) else None
        if previous is None or previous.is_stale(now):
            yield from self._pages(None, None, full=True)
        elif previous.next_url and previous.cursor_usable(now):
            yield from self._pages(previous.update_time, previous.next_url, full=False)
        else:
            yield from self._pages(previous.update_time, None, full=False)

    def _pages(self, start: int | None, next_url: str | None, *, full: bool) -> Iterator[Batch]:
        high = start or 0  # the latest last_updated read: a bad page lies after it
        quarantined = restarted = False
        skipper = PageSkipper("ThreatExchange", self.settings["skip_seconds"], self.context.clock)
        while True:
            if next_url:
                response = self._next_page(next_url)
            else:
                response = self._first_page(high if high or start is not None else None, None)
            if isinstance(response, str):  # the cursor was refused: restart from the time, once
                if restarted:
                    raise ExchangeError(
                        f"ThreatExchange refused the paging cursor it had just issued: {response}",
                        hint="the next fetch resumes from the last committed batch",
                    )
                next_url, restarted = None, True
                continue
            page = read_page(response, self.settings["base_url"])
            if isinstance(page, str):
                stop = skipper.skip(high, page)
                quarantined = True
                yield Batch(
                    malformed=[
                        Malformed(
                            reason=f"unreadable threat_updates page: {page}",
                            raw=Malformed.cut(response.content),
                            retry={"start_time": high, "stop_time": stop},
                        )
                    ],
                    checkpoint=ThreatExchangeCheckpoint(
                        fetched_at=self.context.clock().isoformat(), update_time=stop
                    ),
                    full=full,
                )
                high, next_url, start = stop, None, stop
                continue
            skipper.read_one()
            data, times, following = page
            batch = read_batch(data)
            high = max([high, *(at for at in times if at is not None)])
            batch.checkpoint = ThreatExchangeCheckpoint(
                fetched_at=self.context.clock().isoformat(),
                update_time=high,
                next_url=strip_token(following) if following else None,
            )
            batch.full = full
            batch.complete = full and not following and not quarantined
            yield batch
            if not following:
                return
            next_url = following

    def refetch(self, retry: dict[str, Any]) -> Iterator[Batch]:
        """Read a quarantined window (``retry`` of a :class:`Malformed`) again: the updates
        in ``[start_time, stop_time)`` (one indicator when ``record_id`` is named). Batches
        carry no checkpoint; a page still unreadable raises :class:`ExchangeError`."""
        window = QuarantinedWindow.from_retry(retry, "threatexchange", "start_time", "stop_time")
        response: httpx.Response | str = self._first_page(window.start, window.stop)
        while True:
            if isinstance(response, str):
                raise ExchangeError(f"ThreatExchange refused a paging cursor: {response}")
            page = read_page(response, self.settings["base_url"])
            if isinstance(page, str):
                raise window.still_unreadable("ThreatExchange", page)
            data, _times, following = page
            if window.only is not None:
                data = [
                    raw
                    for raw in data
                    if isinstance(raw, dict) and indicator_id(raw) == window.only
                ]
            yield read_batch(data)
            if not following:
                return
            response = self._next_page(following)

    # -- feedback ------------------------------------------------------------------------------

    def send_opinion(self, opinion: Opinion) -> None:
        """React to the indicator's descriptors (other apps' ones): ``HELPFUL`` for a confirmed
        match, ``DISAGREE_WITH_TAGS`` for a false positive, the reactions python-threatexchange
        reads as a positive and a negative opinion. The descriptors are looked up at send time
        (``/{indicator_id}?fields=descriptors``), so reactions reach the current ones."""
        if opinion.verdict not in REACTIONS:
            raise InputError(
                f"unknown verdict {opinion.verdict!r}", hint=f"use one of {OPINION_VERDICTS}"
            )
        if not opinion.record_id.isdigit():
            raise InputError(f"{opinion.record_id!r} is not a ThreatExchange indicator id")
        base = self.settings["base_url"]
        response = self._get(f"{base}/{opinion.record_id}", {"fields": "descriptors{id,owner{id}}"})
        try:
            descriptors = json.loads(response.content)["descriptors"]["data"]
            targets = [
                str(d["id"])
                for d in descriptors
                if str((d.get("owner") or {}).get("id")) != (self._app_id() or "")
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ExchangeError(
                f"ThreatExchange's descriptors of {opinion.record_id} are unreadable ({exc})",
                hint="the opinion stays queued and is sent again later",
            ) from None
        for descriptor in targets:
            form = {"access_token": self._token(), "reactions": REACTIONS[opinion.verdict]}
            self.context.http.post(
                f"{base}/{descriptor}",
                content=urlencode(form).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                what="ThreatExchange reactions",
            )
