"""The ``ncmec`` exchange: NCMEC's hash sharing API (v2, XML), with feedback.

**What python-threatexchange gives, and what it does not.** Its
``threatexchange.exchanges.clients.ncmec.hash_api`` is used for what it knows best: the
environments by name (:class:`NCMECEnvironment`), the parsing of one XML entry into an
``NCMECEntryUpdate`` (tombstones ``deletedImage``/``deletedVideo``, fingerprints, members,
classification; fingerprints given only by reference, like ``<tmk-pdqf href=.../>``, are left
out) and the fingerprint type names of the feedback endpoints (:class:`FingerprintType`). Its
``NCMECHashAPI`` client is *not* used, because:

- its base URL is fixed to NCMEC's hosts (the environment enum), so it cannot be pointed at a
  proxy or the loopback fake the tests run against without patching private attributes;
- it retries through urllib3 with ~1.5 s of backoff and a sleep nobody can replace, never
  retries the feedback PUT, and turns 401/403 into a bare ``HTTPError``; here every request
  goes through the installation's :class:`~amparo.exchanges.http.RetryingClient` (429 with
  ``Retry-After``, 5xx, capped backoff, :class:`CredentialsError` on 401/403);
- ``get_entries`` wraps a page that does not parse in a bare ``Exception``, so a caller cannot
  tell a malformed page from a network failure, and HMA stalls on it (HMA issue #2004);
  here a page that does not parse is quarantined and the fetch goes on, and one entry that
  does not parse is quarantined alone;
- its ``_date_format`` formats ``from``/``to`` in the machine's local time with a ``Z``
  suffix (wrong anywhere but UTC); here they are formatted in UTC.

python-threatexchange is therefore an optional dependency (``pip install 'amparo[exchanges]'``)
needed only by this exchange; without it, creating an ``ncmec`` collaboration fails with a
:class:`ConfigError` that says so.

**Fetching.** ``GET {base}/v2/entries?from=..&to=..`` returns the entries *updated* in the
window, 1,000 a page, with a ``<paging><next>`` URL for the next page. Entries are not in
time order within a window, so the checkpoint advances to the window's end only once every
page of it was read; a checkpoint taken between pages keeps the window's start and end and
the ``next`` URL. NCMEC asks that paging URLs not be kept long: one older than 12 hours is
dropped and its window read again from the start (its entries are upserts, so reading them
twice changes nothing). The window length adapts as python-threatexchange's does: the
first page's ``next`` (``start``/``max``) estimates the window's size, a window estimated
over ``max_window_entries`` is split before anything of it is yielded, and quiet windows
grow. Deletions (tombstones) carry no fingerprints, so one deletes every record the entry
can have produced (one per supported fingerprint type).

A page that does not parse is quarantined (``Malformed`` with ``record_id=None`` and a
``retry`` naming the page and its window, see :meth:`NCMECExchange.refetch`) and the fetch
continues: with the next page when the broken one was a paging URL (its ``start``, ``size``
and ``max`` give the next one), else by splitting the window until the broken part is at most
an hour, which is then quarantined whole and skipped.

**Records.** One entry (``<member id>-<entry id>``) yields one record per fingerprint Amparo
matches: ``<member id>-<entry id>:<signal type>`` for ``md5`` (images and videos: Amparo's
md5 is a file digest), ``sha1`` and ``pdq``. PhotoDNA and the vendor video fingerprints are
not matched by Amparo and are skipped.

**Feedback.** ``PUT {base}/v2/entries/{member}/{entry}/{FP}/feedback`` with
``<feedbackSubmission><affirmative/></feedbackSubmission>`` for a confirmed record, or
``<negative><reasonIds><guid>..</guid></reasonIds></negative>`` for a false positive. The
reason is the opinion's ``reason`` when it is one of NCMEC's reason GUIDs or names for that
fingerprint type (``GET {base}/v2/feedback/{FP}/reasons``), else the ``feedback_reason``
setting, else the only reason NCMEC offers; otherwise the opinion is refused with the choices.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from amparo.errors import ExchangeError, InputError, UrlRefusedError
from amparo.exchanges.base import Exchange, ExchangeContext, register
from amparo.exchanges.model import Batch, Checkpoint, Credentials, Malformed, Opinion
from amparo.exchanges.ncmec_wire import (
    END_MARGIN_SECONDS,
    ENTRIES_PER_PAGE,
    GUID,
    MAX_WINDOW_ENTRIES,
    MIN_QUARANTINE_WINDOW,
    NAMESPACE,
    PAGING_URL_TTL,
    NCMECCheckpoint,
    Page,
    environments,
    estimated_entries,
    hash_api,
    ncmec_time,
    next_page_after,
    parse_page,
    parse_time,
    split_record_id,
    strip_namespaces,
)
from amparo.url_policy import UrlPolicy, parse_allowlist

# The exchange, and its checkpoint (kept importable from here); the wire format is in
# amparo.exchanges.ncmec_wire.
__all__ = ["NCMECCheckpoint", "NCMECExchange"]

log = logging.getLogger(__name__)


@register
class NCMECExchange(Exchange):
    """NCMEC's hash sharing API; see the module docstring."""

    kind = "ncmec"
    description = "NCMEC hash sharing (XML API v2), with affirmative/negative feedback"
    checkpoint_type = NCMECCheckpoint
    supports_feedback = True
    needs_credentials = True

    def __init__(
        self, settings: dict[str, Any], credentials: Credentials | None, context: ExchangeContext
    ) -> None:
        super().__init__(settings, credentials, context)
        self._api = hash_api()
        self.base_url: str = (
            self.settings.get("base_url") or environments()[self.settings["environment"]]
        )
        self.base_url = self.base_url.rstrip("/")
        if "base_url" in self.settings:
            self._check_base_url(self.base_url)
        creds = credentials or Credentials({})
        hint = 'give the collaboration credentials {"user": "...", "password": "..."}'
        self._auth = (creds.require("user", hint), creds.require("password", hint))
        self._reasons: dict[str, dict[str, str]] = {}

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        known = {
            "environment",
            "member_id",
            "start_time",
            "base_url",
            "feedback_reason",
            "max_window_entries",
        }
        unknown = sorted(set(settings) - known)
        if unknown:
            raise InputError(
                f"the ncmec exchange does not know the setting(s) {', '.join(unknown)}",
                hint=f"settings: {', '.join(sorted(known))}",
            )
        names = environments()
        environment = settings.get("environment")
        by_lower = {name.lower(): name for name in names}
        if not isinstance(environment, str) or environment.strip().lower() not in by_lower:
            raise InputError(
                f"unknown NCMEC environment {environment!r}",
                hint="environments (python-threatexchange's names): " + ", ".join(names),
            )
        settings["environment"] = by_lower[environment.strip().lower()]
        members = settings.get("member_id")
        if members is not None:
            items = members if isinstance(members, list) else [members]
            try:
                settings["member_id"] = sorted({int(m) for m in items})
            except (TypeError, ValueError):
                raise InputError("member_id must be an NCMEC member id or a list of them") from None
        if "start_time" in settings:
            settings["start_time"] = parse_time(settings["start_time"])
        base_url = settings.get("base_url")
        if base_url is not None and (not isinstance(base_url, str) or not base_url.strip()):
            raise InputError("base_url must be the URL of an NCMEC-compatible API")
        reason = settings.get("feedback_reason")
        if reason is not None and not isinstance(reason, str):
            raise InputError("feedback_reason must be a reason GUID or name")
        size = settings.get("max_window_entries", MAX_WINDOW_ENTRIES)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InputError("max_window_entries must be a positive number")
        return settings

    def _check_base_url(self, url: str) -> None:
        """A ``base_url`` override (a proxy, a test server) must be https unless the
        installation's ``url_allowlist`` names its host: the credentials travel with it."""
        scheme, host, _port = UrlPolicy.from_settings(self.context.settings).parse(url)
        if scheme == "https":
            return
        hosts, networks = parse_allowlist(self.context.settings.url_allowlist)
        if host in hosts:
            return
        import ipaddress

        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            address = None
        if address is None or not any(address in net for net in networks):
            raise UrlRefusedError(
                f"the ncmec base_url must be https, not {scheme}://{host}",
                hint="use https, or have an admin add the host to url_allowlist",
            )

    # -- fetching ---------------------------------------------------------------------------

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[Batch]:
        previous = checkpoint if isinstance(checkpoint, NCMECCheckpoint) else None
        now = self.context.clock()
        end_time = int(now.timestamp()) - END_MARGIN_SECONDS
        start = previous.window_start if previous else int(self.settings.get("start_time", 0))
        resume: tuple[str, int] | None = None
        if previous and previous.paging_url and previous.window_end is not None:
            if previous.paging_expired(now):
                log.info("ncmec: paging URL older than 12 h; reading its window again")
            else:
                resume = (previous.paging_url, previous.window_end)
        if resume is None and start >= end_time:
            yield Batch(unchanged=True, checkpoint=self._checkpoint(start))
            return
        max_entries = int(self.settings.get("max_window_entries", MAX_WINDOW_ENTRIES))
        duration = max(1, end_time - start)
        while resume is not None or start < end_time:
            probing = resume is None
            if resume is not None:
                url, window_end = self.base_url + resume[0], resume[1]
                resume = None
            else:
                window_end = min(end_time, start + duration)
                url = self._window_url(start, window_end)
            read = 0
            first = True
            split = False
            while True:
                page = self._read(url)
                if page.broken is not None:
                    if first and probing:
                        if window_end - start > MIN_QUARANTINE_WINDOW:
                            duration = max(MIN_QUARANTINE_WINDOW, (window_end - start) // 4)
                            split = True
                            break
                        retry: dict[str, Any] = {"window_start": start, "window_end": window_end}
                    else:
                        retry = {
                            "url": url,
                            "url_at": self.context.clock().isoformat(),
                            "window_start": start,
                            "window_end": window_end,
                        }
                    bad = Malformed(
                        reason=f"NCMEC page could not be read: {page.broken}",
                        raw=Malformed.cut(page.raw),
                        retry=retry,
                    )
                    following = None if "url" not in retry else next_page_after(url)
                    if following is None:
                        yield Batch(malformed=[bad], checkpoint=self._checkpoint(window_end))
                        break
                    yield Batch(
                        malformed=[bad], checkpoint=self._paging(start, window_end, following)
                    )
                    url, first = self.base_url + following, False
                    continue
                if first and probing and page.next and window_end - start > 1:
                    estimate = estimated_entries(page)
                    if estimate > max_entries:
                        fraction = max(1, (window_end - start) * max_entries // estimate)
                        duration = max(1, min((window_end - start) // 4, fraction))
                        split = True
                        break
                first = False
                read += page.entries
                if page.next:
                    yield Batch(
                        page.updates,
                        page.malformed,
                        checkpoint=self._paging(start, window_end, page.next),
                    )
                    url = self.base_url + page.next
                    continue
                yield Batch(page.updates, page.malformed, checkpoint=self._checkpoint(window_end))
                break
            if split:
                log.info("ncmec: splitting the window from %s", ncmec_time(start))
                continue
            if read < 2 * ENTRIES_PER_PAGE:
                duration *= 2
            start = window_end

    def refetch(self, retry: dict[str, Any]) -> Iterator[Batch]:
        """Read a quarantined page or window again (``Malformed.retry``). The batches carry
        no checkpoint: progress is not moved. A paging URL past its 12 hours is replaced by
        its whole window."""
        url = retry.get("url")
        url_at = retry.get("url_at")
        fresh = (
            isinstance(url, str)
            and isinstance(url_at, str)
            and self.context.clock() - datetime.fromisoformat(url_at) <= PAGING_URL_TTL
        )
        if fresh and isinstance(url, str):
            page = self._read(url)
            if page.broken is not None:
                yield Batch(
                    malformed=[
                        Malformed(
                            reason=f"NCMEC page could not be read: {page.broken}",
                            raw=Malformed.cut(page.raw),
                            retry=retry,
                        )
                    ]
                )
                return
            yield Batch(page.updates, page.malformed)
            return
        start, end = int(retry["window_start"]), int(retry["window_end"])
        url = self._window_url(start, end)
        while True:
            page = self._read(url)
            if page.broken is not None:
                again = {"window_start": start, "window_end": end}
                yield Batch(
                    malformed=[
                        Malformed(
                            reason=f"NCMEC page could not be read: {page.broken}",
                            raw=Malformed.cut(page.raw),
                            retry=again,
                        )
                    ]
                )
                return
            yield Batch(page.updates, page.malformed)
            if not page.next:
                return
            url = self.base_url + page.next

    def _window_url(self, start: int, end: int) -> str:
        query = urlencode({"from": ncmec_time(start), "to": ncmec_time(end)})
        return f"{self.base_url}/v2/entries?{query}"

    def _checkpoint(self, window_start: int) -> NCMECCheckpoint:
        return NCMECCheckpoint(
            fetched_at=self.context.clock().isoformat(), window_start=window_start
        )

    def _paging(self, start: int, end: int, next_url: str) -> NCMECCheckpoint:
        now = self.context.clock().isoformat()
        return NCMECCheckpoint(
            fetched_at=now,
            window_start=start,
            window_end=end,
            paging_url=next_url,
            paging_url_at=now,
        )

    def _read(self, url: str) -> Page:
        response = self.context.http.get(url, auth=self._auth, what="NCMEC")
        return self._parse(response.content)

    def _parse(self, content: bytes) -> Page:
        return parse_page(self._api, content, self.settings.get("member_id"))

    # -- feedback ---------------------------------------------------------------------------

    def send_opinion(self, opinion: Opinion) -> None:
        member_id, entry_id, fingerprint = split_record_id(opinion.record_id)
        if opinion.verdict == "true_positive":
            vote = ET.Element("affirmative")
        elif opinion.verdict == "false_positive":
            vote = ET.Element("negative")
            guid = ET.SubElement(ET.SubElement(vote, "reasonIds"), "guid")
            guid.text = self._reason_guid(fingerprint, opinion.reason)
        else:
            raise InputError(
                f"NCMEC takes true_positive or false_positive feedback, not {opinion.verdict!r}"
            )
        root = ET.Element("feedbackSubmission", {"xmlns": NAMESPACE})
        root.append(vote)
        body = b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root)
        self.context.http.request(
            "PUT",
            f"{self.base_url}/v2/entries/{member_id}/{entry_id}/{fingerprint}/feedback",
            content=body,
            headers={"Content-Type": "application/xml; charset=utf-8"},
            auth=self._auth,
            ok=(200, 201, 202, 204),
            what="NCMEC feedback",
        )

    def feedback_reasons(self, fingerprint: str) -> dict[str, str]:
        """NCMEC's negative feedback reasons for a fingerprint type: GUID -> name."""
        if fingerprint not in self._reasons:
            response = self.context.http.get(
                f"{self.base_url}/v2/feedback/{fingerprint}/reasons",
                auth=self._auth,
                what="NCMEC feedback reasons",
            )
            try:
                root = strip_namespaces(ET.fromstring(response.content))
            except ET.ParseError as exc:
                raise ExchangeError(
                    f"NCMEC's feedback reasons are not XML ({exc})",
                    hint="the opinion stays queued and is sent again later",
                ) from None
            reasons = root.iter("reason")
            self._reasons[fingerprint] = {
                r.get("guid", ""): r.get("name", "") for r in reasons if r.get("guid")
            }
        return self._reasons[fingerprint]

    def _reason_guid(self, fingerprint: str, wanted: str | None) -> str:
        for candidate in (wanted, self.settings.get("feedback_reason")):
            if candidate and GUID.fullmatch(candidate.strip()):
                return candidate.strip()
        reasons = self.feedback_reasons(fingerprint)
        for candidate in (wanted, self.settings.get("feedback_reason")):
            if not candidate:
                continue
            for guid, name in reasons.items():
                if name.strip().lower() == candidate.strip().lower():
                    return guid
        if len(reasons) == 1:
            return next(iter(reasons))
        raise InputError(
            f"NCMEC needs a reason for negative feedback on {fingerprint}",
            hint="give the opinion a reason or set the collaboration's feedback_reason to one "
            "of: " + "; ".join(f"{guid} ({name})" for guid, name in reasons.items()),
        )
