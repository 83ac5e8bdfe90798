"""StopNCII.org: hashes that people submitted of their own intimate images, shared with
platforms so the images can be blocked; withdrawals must be honoured.

The HTTP API is the one python-threatexchange's client speaks
(``threatexchange/exchanges/clients/stopncii/api.py``): ``GET {base}/FetchHashes`` with
``startTimestamp``, ``pageSize`` and ``nextPageToken``, answering ``hashRecords``,
``nextPageToken``, ``nextSetTimestamp`` and ``hasMoreRecords``; ``POST {base}/SubmitFeedback``
with ``{"count": n, "hashFeedbacks": [{"hashValue", "feedbackValue", "tags"}]}``. Every request
carries the Azure API Management subscription key (``Ocp-Apim-Subscription-Key``) and the
endpoint's own function key (``x-functions-key``).

Why this module speaks the API itself instead of using ``StopNCIIAPI``:

* the client parses each record with dacite and *logs and drops* one it cannot read, and
  raises on a page it cannot read: Amparo must quarantine both (kept, counted, retried) and go
  on, which needs the raw record and the paging position;
* its retries (urllib3 ``Retry``) sleep for real and are not injectable, and POSTs (feedback)
  are not retried at all; :class:`~amparo.exchanges.http.RetryingClient` retries both, honours
  ``Retry-After`` and turns 401/403 into :class:`~amparo.errors.CredentialsError`;
* its collaboration (``stop_ncii_api._get_delta_mapping``) compares ``hashValue`` with the
  Withdrawn/Deleted statuses where it means ``hashStatus``, so HMA never removes a withdrawn
  hash; here ``hashStatus`` Withdrawn or Deleted is a deletion.

The wire vocabulary (signal types, case statuses, feedback values, header names, the base URL)
is mirrored in :mod:`amparo.exchanges.stopncii_wire` rather than imported, so the exchange
needs no optional package at run time; ``tests/unit/test_exchange_stopncii.py`` checks the
mirror against the client's enums and runs the client itself against the test fake, so the
fake stays faithful to what the client expects.

Checkpoint: the ``startTimestamp`` of the current paging run with its ``nextPageToken`` (to
continue the run) and the run's ``nextSetTimestamp`` (where the next run starts). The client
says page tokens are "not valid over long periods of time": a token older than
:data:`PAGE_TOKEN_TTL` is not used, and a token the service refuses (HTTP 400/404/410) is
dropped; either way the run restarts from its ``startTimestamp`` (records are snapshots keyed
by type and hash, so re-reading them is harmless). A checkpoint not advanced for
:data:`STALE_AFTER` (python-threatexchange's 30 days) is stale: the runner fetches everything
again, since withdrawals older than that may no longer be listed.

A page that cannot be read (not JSON, paging fields missing) cannot say where the next page
starts. Records come in ``lastModtimestamp`` order, so the fetch quarantines the time window
``[t, t + skip_seconds)`` after the last record it read (``retry`` names the window;
:meth:`StopNCIIExchange.refetch` reads it again later) and continues from the window's end:
one bad page never stalls the collaboration, and nothing in it is lost. After
:data:`MAX_BAD_PAGES_IN_A_ROW` unreadable pages in a row the source is treated as failing
(:class:`~amparo.errors.ExchangeError`); what was committed stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import httpx

from amparo.errors import CredentialsError, ExchangeError, InputError
from amparo.exchanges.base import Exchange, register
from amparo.exchanges.http_settings import check_base_url, check_int
from amparo.exchanges.model import OPINION_VERDICTS, Batch, Checkpoint, Malformed, Opinion
from amparo.exchanges.skipping import PageSkipper, QuarantinedWindow
from amparo.exchanges.stopncii_wire import (
    BASE_URL,
    DEFAULT_PAGE_SIZE,
    DEFAULT_SKIP_SECONDS,
    DEFAULT_START_TIMESTAMP,
    FEEDBACK_VALUES,
    FUNCTION_KEY_HEADER,
    SUBSCRIPTION_HEADER,
    StopNCIICheckpoint,
    read_batch,
    read_page,
    record_id_of,
)

# The exchange, and its checkpoint (kept importable from here); the wire format is in
# amparo.exchanges.stopncii_wire.
__all__ = ["StopNCIICheckpoint", "StopNCIIExchange"]

_SETTINGS = ("base_url", "page_size", "skip_seconds")


@register
class StopNCIIExchange(Exchange):
    """StopNCII.org's hash exchange (``FetchHashes``, ``SubmitFeedback``)."""

    kind: ClassVar[str] = "stopncii"
    description: ClassVar[str] = (
        "StopNCII.org: hashes of intimate images their subjects asked platforms to block "
        "(PDQ, video MD5); withdrawals remove them; feedback on review decisions"
    )
    checkpoint_type: ClassVar[type[Checkpoint]] = StopNCIICheckpoint
    supports_feedback: ClassVar[bool] = True
    needs_credentials: ClassVar[bool] = True

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        """``base_url`` (default the real service; tests point it at a fake), ``page_size``
        (1..10000, default 800) and ``skip_seconds`` (the window quarantined after an
        unreadable page, default 3600)."""
        unknown = sorted(set(settings) - set(_SETTINGS))
        if unknown:
            raise InputError(
                f"the stopncii exchange does not take {', '.join(unknown)}",
                hint="settings: base_url, page_size, skip_seconds (all optional)",
            )
        return {
            "base_url": check_base_url(settings.get("base_url", BASE_URL), BASE_URL),
            "page_size": check_int(settings, "page_size", DEFAULT_PAGE_SIZE, 1, 10_000),
            "skip_seconds": check_int(
                settings, "skip_seconds", DEFAULT_SKIP_SECONDS, 1, 366 * 86_400
            ),
        }

    # -- credentials ---------------------------------------------------------------------

    def _headers(self, endpoint: str) -> dict[str, str]:
        """The two keys python-threatexchange sends: the subscription key on every request,
        and the endpoint's function key (FetchHashes and SubmitFeedback have their own)."""
        if self.credentials is None:
            raise CredentialsError(
                "the stopncii exchange needs credentials",
                hint='point the collaboration at a JSON secret: {"subscription_key": ..., '
                '"fetch_function_key": ..., "feedback_function_key": ...}',
            )
        hint = (
            "the secret is a JSON object with subscription_key, fetch_function_key and "
            "(for feedback) feedback_function_key, as StopNCII issued them"
        )
        subscription = self.credentials.require("subscription_key", hint)
        key_name = "fetch_function_key" if endpoint == "FetchHashes" else "feedback_function_key"
        function_key = self.credentials.require(key_name, hint)
        return {SUBSCRIPTION_HEADER: subscription, FUNCTION_KEY_HEADER: function_key}

    # -- fetching --------------------------------------------------------------------------

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        now = self.context.clock()
        previous = checkpoint if isinstance(checkpoint, StopNCIICheckpoint) else None
        full = previous is None or previous.is_stale(now)
        token: str | None = None
        if previous is None or full:
            start = DEFAULT_START_TIMESTAMP
        elif previous.page_token:
            # Mid-run: continue it while its token is young, else read the run again.
            start = previous.start_timestamp
            token = previous.page_token if previous.token_usable(now) else None
        else:
            start = previous.next_set_timestamp
        yield from self._pages(start, token, full=full)

    def _pages(self, start: int, token: str | None, *, full: bool) -> Iterator[Batch]:
        headers = self._headers("FetchHashes")
        high = start  # the latest lastModtimestamp read so far: a bad page lies after it
        quarantined = False
        skipper = PageSkipper("StopNCII", self.settings["skip_seconds"], self.context.clock)
        restarted = False
        while True:
            response = self._fetch_page(start, token, headers)
            if response is None:
                # The token was refused (expired): read the run again, once; a token this
                # very run was given being refused too means the service is misbehaving.
                if restarted:
                    raise ExchangeError(
                        "StopNCII refused the page token it had just issued",
                        hint="the service may be failing; the next fetch resumes from the "
                        "last committed batch",
                    )
                token, restarted = None, True
                continue
            page = read_page(response)
            if isinstance(page, str):
                stop = skipper.skip(high, page)
                quarantined = True
                yield Batch(
                    malformed=[
                        Malformed(
                            reason=f"unreadable FetchHashes page: {page}",
                            raw=Malformed.cut(response.content),
                            retry={"start_timestamp": high, "stop_timestamp": stop},
                        )
                    ],
                    checkpoint=StopNCIICheckpoint(
                        fetched_at=self.context.clock().isoformat(),
                        start_timestamp=stop,
                        next_set_timestamp=stop,
                    ),
                    full=full,
                )
                start, token, high = stop, None, stop
                continue
            skipper.read_one()
            batch = read_batch(page["hashRecords"])
            high = max([high, *(at for at in page["_times"] if at is not None)])
            more = bool(page["hasMoreRecords"] and page["nextPageToken"])
            batch.checkpoint = StopNCIICheckpoint(
                fetched_at=self.context.clock().isoformat(),
                start_timestamp=start,
                page_token=page["nextPageToken"] if more else None,
                next_set_timestamp=max(page["nextSetTimestamp"], start),
            )
            batch.full = full
            # A full fetch that quarantined a page has not seen everything: withdrawing what
            # it did not list could remove live hashes, so it does not claim completeness.
            batch.complete = full and not more and not quarantined
            yield batch
            if not more:
                return
            token = page["nextPageToken"]

    def _fetch_page(
        self, start: int, token: str | None, headers: dict[str, str]
    ) -> httpx.Response | None:
        params: dict[str, Any] = {"startTimestamp": start, "pageSize": self.settings["page_size"]}
        if token:
            params["nextPageToken"] = token
        ok = (200, 400, 404, 410) if token else (200,)
        response = self.context.http.get(
            f"{self.settings['base_url']}/FetchHashes",
            params=params,
            headers=headers,
            ok=ok,
            what="StopNCII FetchHashes",
        )
        if response.status_code != 200:
            return None
        return response

    def refetch(self, retry: dict[str, Any]) -> Iterator[Batch]:
        """Read a quarantined window (``retry`` of a :class:`Malformed`) again: the records
        last modified in ``[start_timestamp, stop_timestamp)`` (one record when ``record_id``
        is named). Batches carry no checkpoint (the collaboration's stays where it is); a page
        still unreadable raises :class:`ExchangeError` so the item stays quarantined."""
        window = QuarantinedWindow.from_retry(
            retry, "stopncii", "start_timestamp", "stop_timestamp"
        )
        headers = self._headers("FetchHashes")
        token: str | None = None
        while True:
            response = self._fetch_page(window.start, token, headers)
            if response is None:
                raise ExchangeError("StopNCII refused a page token while re-reading a window")
            page = read_page(response)
            if isinstance(page, str):
                raise window.still_unreadable("StopNCII", page)
            inside = [
                raw
                for raw, at in zip(page["hashRecords"], page["_times"], strict=True)
                if at is None or window.start <= at < window.stop
            ]
            if window.only is not None:
                inside = [raw for raw in inside if record_id_of(raw) == window.only]
            yield read_batch(inside)
            past = any(at is not None and at >= window.stop for at in page["_times"])
            if past or not (page["hasMoreRecords"] and page["nextPageToken"]):
                return
            token = page["nextPageToken"]

    # -- feedback --------------------------------------------------------------------------

    def send_opinion(self, opinion: Opinion) -> None:
        """``SubmitFeedback`` for one hash: ``Blocked`` for a confirmed match, ``NotBlocked``
        for a false positive; the reason, if any, goes as a tag."""
        if opinion.verdict not in FEEDBACK_VALUES:
            raise InputError(
                f"unknown verdict {opinion.verdict!r}", hint=f"use one of {OPINION_VERDICTS}"
            )
        hash_value = opinion.record_id.partition(":")[2] or opinion.signal
        feedback = {
            "tags": [opinion.reason] if opinion.reason else [],
            "feedbackValue": FEEDBACK_VALUES[opinion.verdict],
            "hashValue": hash_value,
        }
        self.context.http.post(
            f"{self.settings['base_url']}/SubmitFeedback",
            headers=self._headers("SubmitFeedback"),
            json={"count": 1, "hashFeedbacks": [feedback]},
            ok=(200, 201, 202, 204),
            what="StopNCII SubmitFeedback",
        )
