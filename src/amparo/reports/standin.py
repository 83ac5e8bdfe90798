"""A stand-in for the CyberTipline API: the same endpoints, kept in memory.

For tests and for operators' dry runs (``amparo reports standin --port 8765``, then
``cybertip_url = "http://127.0.0.1:8765"``). It checks what the real service checks that
matters to Amparo -- well-formed XML, a ``<report>`` root, known report and file ids, no
uploads to a finished or retracted report -- and can be told to fail one call, to rehearse
recovery. Nothing it receives is written to disk; uploaded files are kept only as digests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Form, Request, UploadFile
from fastapi.responses import Response


@dataclass
class StandInReport:
    id: str
    xml: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    """file id -> {"name", "sha256", "size", "details" (the fileDetails XML, once sent)}."""
    finished: bool = False
    retracted: bool = False


class StandIn:
    """The in-memory service. ``fail`` maps a step to the call number (1-based) that fails
    with HTTP 500, e.g. ``{"upload": 1}``; ``username``/``password`` enable basic auth."""

    def __init__(
        self,
        *,
        fail: dict[str, int] | None = None,
        username: str = "",
        password: str = "",
    ) -> None:
        self.reports: dict[str, StandInReport] = {}
        self.calls: Counter[str] = Counter()
        self.fail = dict(fail or {})
        self.username, self.password = username, password
        self._next = 1000
        self._lock = threading.Lock()
        self.app = self._build()

    def _build(self) -> FastAPI:
        app = FastAPI(title="CyberTipline stand-in", docs_url=None, redoc_url=None)

        @app.post("/submit")
        async def submit(request: Request) -> Response:
            if (refused := self._gate(request, "submit")) is not None:
                return refused
            root = _xml(await request.body())
            if root is None or root.tag != "report":
                return _answer(4000, "the body is not a well-formed <report> document", 400)
            with self._lock:
                report_id = str(self._next)
                self._next += 1
                self.reports[report_id] = StandInReport(report_id, ET.tostring(root, "unicode"))
            return _answer(0, "Success", report_id=report_id)

        @app.post("/upload")
        async def upload(request: Request, file: UploadFile, id: str = Form()) -> Response:
            if (refused := self._gate(request, "upload")) is not None:
                return refused
            report = self.reports.get(id)
            if report is None or report.finished or report.retracted:
                return _answer(4100, f"report {id} is not open", 400)
            data = await file.read()
            file_id = secrets.token_hex(8)
            report.files[file_id] = {
                "name": file.filename,
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "details": None,
            }
            return _answer(0, "Success", report_id=id, file_id=file_id)

        @app.post("/fileinfo")
        async def fileinfo(request: Request) -> Response:
            if (refused := self._gate(request, "fileinfo")) is not None:
                return refused
            root = _xml(await request.body())
            if root is None or root.tag != "fileDetails":
                return _answer(4000, "the body is not a well-formed <fileDetails> document", 400)
            report = self.reports.get((root.findtext("reportId") or "").strip())
            file_id = (root.findtext("fileId") or "").strip()
            if report is None or file_id not in report.files or report.finished:
                return _answer(4200, "unknown report or file, or the report is finished", 400)
            report.files[file_id]["details"] = ET.tostring(root, "unicode")
            return _answer(0, "Success", report_id=report.id, file_id=file_id)

        @app.post("/finish")
        async def finish(request: Request) -> Response:
            return await self._close(request, "finish")

        @app.post("/retract")
        async def retract(request: Request) -> Response:
            return await self._close(request, "retract")

        @app.get("/status")
        def status() -> dict[str, Any]:
            return {
                "reports": {
                    r.id: {
                        "finished": r.finished,
                        "retracted": r.retracted,
                        "files": {
                            k: {**v, "details": bool(v["details"])} for k, v in r.files.items()
                        },
                    }
                    for r in self.reports.values()
                },
                "calls": dict(self.calls),
            }

        return app

    async def _close(self, request: Request, step: str) -> Response:
        if (refused := self._gate(request, step)) is not None:
            return refused
        form = await request.form()
        report_id = str(form.get("id") or request.query_params.get("id") or "")
        report = self.reports.get(report_id)
        if report is None or report.finished or report.retracted:
            return _answer(4300, f"report {report_id} is not open", 400)
        if step == "finish":
            report.finished = True
        else:
            report.retracted = True
        return _answer(0, "Success", report_id=report_id)

    def _gate(self, request: Request, step: str) -> Response | None:
        """Basic auth, then the rehearsed failure."""
        if self.username:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if request.headers.get("authorization") != f"Basic {expected}":
                return Response(status_code=401, headers={"www-authenticate": "Basic"})
        with self._lock:
            self.calls[step] += 1
            failing = self.fail.get(step) == self.calls[step]
        if failing:
            return _answer(5000, f"rehearsed failure of {step} call {self.calls[step]}", 500)
        return None


def _xml(body: bytes) -> ET.Element | None:
    try:
        return ET.fromstring(body)
    except ET.ParseError:
        return None


def _answer(
    code: int,
    description: str,
    status: int = 200,
    *,
    report_id: str | None = None,
    file_id: str | None = None,
) -> Response:
    root = ET.Element("reportResponse")
    ET.SubElement(root, "responseCode").text = str(code)
    ET.SubElement(root, "responseDescription").text = description
    if report_id is not None:
        ET.SubElement(root, "reportId").text = report_id
    if file_id is not None:
        ET.SubElement(root, "fileId").text = file_id
    body = ET.tostring(root, encoding="unicode")
    return Response(body, status_code=status, media_type="text/xml")


@contextmanager
def running(standin: StandIn, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``standin`` with uvicorn in a thread; yields its base URL (port 0: a free one)."""
    config = uvicorn.Config(standin.app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the CyberTipline stand-in did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
