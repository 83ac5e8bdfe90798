"""HTTP for exchanges: one client that retries what is worth retrying (429 with its
``Retry-After``, 5xx, dropped connections) with capped exponential backoff, and turns the
rest into clear errors (401/403: :class:`CredentialsError`; other 4xx: :class:`ExchangeError`).

``sleep`` is injectable so tests of retries take no wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from amparo.clock import utc_now
from amparo.errors import CredentialsError, ExchangeError
from amparo.url_policy import UrlPolicy

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class RetryingClient:
    """A small wrapper over :class:`httpx.Client` used by every exchange."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        attempts: int = 5,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        verify: bool | str = True,
        policy: UrlPolicy | None = None,
        max_bytes: int = 2 * 1024**3,
        deadline: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.sleep = sleep
        self.client = httpx.Client(
            timeout=timeout, transport=transport, verify=verify, follow_redirects=False
        )
        self.max_bytes = max_bytes
        """Largest body read; a bigger one is an :class:`ExchangeError`, never unbounded
        memory."""
        self.deadline = deadline if deadline is not None else timeout * 10
        """Most seconds one request may take in all (a trickling source cannot hang a fetch:
        the per-read timeout alone would let it)."""
        self.monotonic = monotonic
        self.policy = policy
        """When set, every URL is checked before it is reached: http(s) only, and public
        addresses unless ``url_allowlist`` names the host or network (a curator chooses
        collaboration URLs; they must not reach the metadata service or the intranet)."""
        self.retries = 0
        """Requests retried so far (status and metrics read it)."""

    def close(self) -> None:
        self.client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        ok: tuple[int, ...] = (200,),
        what: str = "the source",
    ) -> httpx.Response:
        """Send a request, retrying 429/5xx/connection failures; return the response when
        its status is in ``ok``, else raise a clear error naming ``what``."""
        if self.policy is not None:
            self.policy.check(url)
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._send(
                    method,
                    url,
                    params=params,
                    headers=headers,
                    json=json,
                    content=content,
                    auth=auth,
                    what=what,
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                wait = self._wait(attempt, None)
            else:
                if response.status_code in ok:
                    return response
                if response.status_code in (401, 403):
                    raise CredentialsError(
                        f"{what} refused the credentials (HTTP {response.status_code})",
                        hint="check the collaboration's credentials (`amparo exchange show`)",
                    )
                if response.status_code not in RETRY_STATUSES:
                    raise ExchangeError(
                        f"{what} answered HTTP {response.status_code}: {response.text[:200]!r}",
                        hint="check the collaboration's settings; the fetch resumes from the "
                        "last committed batch",
                    )
                last = f"HTTP {response.status_code}"
                wait = self._wait(attempt, response.headers.get("retry-after"))
            if attempt < self.attempts:
                self.retries += 1
                self.sleep(wait)
        raise ExchangeError(
            f"{what} failed {self.attempts} times (last: {last})",
            hint="the source may be down or rate limiting; the next fetch resumes from the "
            "last committed batch",
        )

    def _send(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """One request, its body read in chunks under ``max_bytes`` and ``deadline``."""
        started = self.monotonic()
        with self.client.stream(method, url, **kwargs) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise ExchangeError(
                    f"{what} answered {int(declared):,} bytes, more than the "
                    f"{self.max_bytes:,} allowed",
                    hint="raise exchange_max_list_bytes if the list is really that large",
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise ExchangeError(
                        f"{what} sent more than the {self.max_bytes:,} bytes allowed",
                        hint="raise exchange_max_list_bytes if the list is really that large",
                    )
                if self.monotonic() - started > self.deadline:
                    raise ExchangeError(
                        f"{what} took more than {self.deadline:.0f} s to answer",
                        hint="the source is too slow or stalled; the next fetch resumes from "
                        "the last committed batch",
                    )
                chunks.append(chunk)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=b"".join(chunks),
            request=response.request,
        )

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def _wait(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(self.backoff_max, max(0.0, float(retry_after)))
            except ValueError:
                try:
                    at = parsedate_to_datetime(retry_after)
                    return min(self.backoff_max, max(0.0, (at - utc_now()).total_seconds()))
                except (TypeError, ValueError):
                    pass
        return float(min(self.backoff_max, self.backoff * 2 ** (attempt - 1)))
