"""One exception tree: every error Amparo raises on purpose is an ``AmparoError`` declared in
``amparo.errors``, with the code and HTTP status its callers have always seen."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import amparo
from amparo import errors

SRC = Path(amparo.__file__).parent

# Private control flow that never leaves its module (each says so in its docstring).
ALLOWED_ELSEWHERE = {("actions/engine.py", "_Failed")}


def _exception_classes(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(b.endswith(("Error", "Exception")) or b == "BaseException" for b in bases):
                names.append(node.name)
    return names


def test_every_exception_class_lives_in_errors_py() -> None:
    elsewhere = {
        (str(path.relative_to(SRC)), name)
        for path in SRC.rglob("*.py")
        if path.name != "errors.py" or path.parent != SRC
        for name in _exception_classes(path)
    }
    assert elsewhere == ALLOWED_ELSEWHERE


def test_no_value_error_for_failures() -> None:
    raising = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if "store" not in path.relative_to(SRC).parts  # store/ is split elsewhere (#13)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "raise ValueError" in line
    ]
    assert raising == []


@pytest.mark.parametrize(
    ("name", "code", "status"),
    [
        ("AuthenticationError", "unauthenticated", 401),
        ("RateLimitedError", "rate_limited", 429),
        ("ProbeSuspectedError", "probe_suspected", 429),
        ("FetchBusyError", "too_many_fetches", 429),
        ("FetchError", "fetch_failed", 422),
        ("UrlRefusedError", "url_refused", 400),
        ("PayloadTooLargeError", "payload_too_large", 413),
        ("SubmissionError", "submission_failed", 502),
        ("AddressInUseError", "address_in_use", 400),
        ("ExposureLimitError", "daily_limit_reached", 429),
        ("BlobMissingError", "evidence_integrity", 500),
        ("InternalError", "internal_error", 500),
    ],
)
def test_codes_and_statuses(name: str, code: str, status: int) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.AmparoError)
    assert (cls.code, cls.http_status) == (code, status)


def test_every_error_is_in_the_drawn_tree() -> None:
    drawn = set((errors.__doc__ or "").replace("\n", " ").split())
    for name, value in vars(errors).items():
        if isinstance(value, type) and issubclass(value, errors.AmparoError):
            assert name in drawn, name
