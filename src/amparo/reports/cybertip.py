"""A client for NCMEC's CyberTipline reporting API (the ESP web service).

The workflow: ``submit`` the report XML (the hotline answers with a report id), ``upload``
each file (answered with a file id), send each file's ``fileinfo``, then ``finish`` the report;
a report not yet finished can be ``retract``-ed. Every answer is a ``<reportResponse>`` whose
``responseCode`` 0 means success.

Reports go to the **test** environment unless ``cybertip_environment = "production"`` *and*
``cybertip_url`` is set explicitly: a real report is never filed by accident.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import httpx

from amparo.config import DEFAULTS, Settings
from amparo.errors import ConfigError, SubmissionError

TEST_URL = "https://exttest.cybertip.org/ispws"
"""NCMEC's test environment: reports sent there are not acted on."""
ENVIRONMENTS = ("test", "production")
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CyberTipTarget:
    """Where and as whom reports are sent."""

    environment: str
    base_url: str
    username: str = ""
    password: str = ""
    timeout: float = DEFAULTS.cybertip_timeout_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> CyberTipTarget:
        env = settings.cybertip_environment.strip().lower()
        if env not in ENVIRONMENTS:
            raise ConfigError(
                f"cybertip_environment {settings.cybertip_environment!r} is not known",
                hint="use 'test' (the default) or 'production'",
            )
        url = settings.cybertip_url.strip().rstrip("/")
        if env == "production" and not url:
            raise ConfigError(
                "cybertip_environment is 'production' but cybertip_url is not set",
                hint="set cybertip_url to the production address NCMEC gave you; Amparo never "
                "guesses where real reports go",
            )
        if url and not url.startswith(("https://", "http://")):
            raise ConfigError(f"cybertip_url {url!r} is not an http(s) URL")
        return cls(
            environment=env,
            base_url=url or TEST_URL,
            username=settings.cybertip_username,
            password=settings.cybertip_password,
            timeout=settings.cybertip_timeout_seconds,
        )


@dataclass(frozen=True)
class ApiResponse:
    code: int
    description: str
    report_id: str | None = None
    file_id: str | None = None


class CyberTipClient:
    """One method per API call; raises :class:`SubmissionError` on any failure."""

    def __init__(self, target: CyberTipTarget, *, transport: httpx.BaseTransport | None = None):
        self.target = target
        auth = (target.username, target.password) if target.username else None
        self._http = httpx.Client(
            base_url=target.base_url,
            auth=auth,
            timeout=target.timeout,
            transport=transport,
            follow_redirects=False,
            headers={"user-agent": "amparo-reports"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CyberTipClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def submit(self, report_xml: str) -> str:
        """File the report; returns the hotline's report id."""
        answer = self._call("submit", content=report_xml.encode(), headers=_XML)
        if not answer.report_id:
            raise SubmissionError("the hotline accepted the report but sent no report id")
        return answer.report_id

    def upload(self, report_id: str, file_name: str, data: bytes) -> str:
        """Upload one file of the report; returns its file id."""
        answer = self._call(
            "upload",
            data={"id": report_id},
            files={"file": (file_name, data, "application/octet-stream")},
        )
        if not answer.file_id:
            raise SubmissionError("the hotline accepted the upload but sent no file id")
        return answer.file_id

    def fileinfo(self, file_details_xml: str) -> None:
        """Send the details (name, hashes, classification...) of an uploaded file."""
        self._call("fileinfo", content=file_details_xml.encode(), headers=_XML)

    def finish(self, report_id: str) -> None:
        """Close the report: the hotline processes it from now on."""
        self._call("finish", data={"id": report_id})

    def retract(self, report_id: str) -> None:
        """Withdraw a report that was not finished."""
        self._call("retract", data={"id": report_id})

    def _call(self, step: str, **kwargs: Any) -> ApiResponse:
        try:
            response = self._http.post(f"/{step}", **kwargs)
        except httpx.HTTPError as exc:
            raise SubmissionError(
                f"{step}: cannot reach {self.target.base_url}: {exc}",
                hint="check cybertip_url and the network; run the same command again to resume",
            ) from None
        body = response.content[:MAX_RESPONSE_BYTES]
        if response.status_code == 401:
            raise SubmissionError(
                f"{step}: the hotline refused the credentials (401)",
                hint="check cybertip_username and cybertip_password",
            )
        answer = _parse(body)
        if response.status_code >= 400 or answer is None or answer.code != 0:
            detail = answer.description if answer else body[:200].decode("utf-8", "replace")
            raise SubmissionError(
                f"{step} failed (HTTP {response.status_code}): {detail}",
                hint="run the same command again to resume where it stopped",
            )
        return answer


_XML = {"content-type": "text/xml; charset=utf-8"}


def _parse(body: bytes) -> ApiResponse | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    if root.tag != "reportResponse":
        return None
    try:
        code = int((root.findtext("responseCode") or "").strip())
    except ValueError:
        return None
    return ApiResponse(
        code=code,
        description=(root.findtext("responseDescription") or "").strip(),
        report_id=(root.findtext("reportId") or "").strip() or None,
        file_id=(root.findtext("fileId") or "").strip() or None,
    )
