"""Jurisdictions a ``national`` assessment may name: as data, not code.

Each is an ISO 3166-1 alpha-2 code with the country's name (English, Spanish, Brazilian
Portuguese), the laws (statute and articles) that make child sexual abuse material illegal
there, and notes. The built-in list (``jurisdictions.json`` beside this module) covers Mexico
and other Latin American countries and a few others.

**Not legal advice.** The built-in list is a starting point compiled from public sources;
laws are amended and renumbered. Operators must have counsel verify every entry they rely on,
and correct or extend the list with ``hotline_jurisdictions_file`` (a JSON file of the same
shape, whose entries add to or replace the built-in ones)::

    {"MX": {"name": {"en": "Mexico", "es": "México", "pt_BR": "México"},
            "laws": [{"statute": "Código Penal Federal", "articles": ["202", "202 bis"]}],
            "notes": "..."}}

Pure: reads files, stores nothing.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from amparo.errors import ConfigError, InputError

BUILT_IN = Path(__file__).with_name("jurisdictions.json")
NAME_LANGUAGES = ("en", "es", "pt_BR")
_CODE = re.compile(r"[A-Z]{2}")
_MAX_TEXT = 2000


class JurisdictionSettings(Protocol):
    """What this module reads of :class:`amparo.config.Settings`."""

    @property
    def hotline_jurisdictions_file(self) -> str: ...


@dataclass(frozen=True)
class Law:
    """A statute and the articles of it that apply."""

    statute: str
    articles: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not self.articles:
            return self.statute
        word = "art." if len(self.articles) == 1 else "arts."
        return f"{self.statute}, {word} {', '.join(self.articles)}"


@dataclass(frozen=True)
class Jurisdiction:
    """One country whose law an analyst may find content illegal under."""

    code: str
    """ISO 3166-1 alpha-2, upper case."""
    names: dict[str, str]
    """Language (``en``, ``es``, ``pt_BR``) -> the country's name; ``en`` always present."""
    laws: tuple[Law, ...] = ()
    notes: str = ""

    def name(self, language: str = "en") -> str:
        return self.names.get(language) or self.names["en"]

    @property
    def legal_basis(self) -> str:
        """The laws as one line, e.g. ``Código Penal Federal, arts. 202, 202 bis``."""
        return "; ".join(str(law) for law in self.laws)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": dict(self.names),
            "laws": [{"statute": law.statute, "articles": list(law.articles)} for law in self.laws],
            "notes": self.notes,
        }


def jurisdictions(settings: JurisdictionSettings) -> dict[str, Jurisdiction]:
    """Every jurisdiction, by code (sorted): the built-in list with the entries of
    ``hotline_jurisdictions_file`` added or replacing. ConfigError when that file is missing
    or not of the expected shape."""
    merged = dict(_built_in())
    configured = settings.hotline_jurisdictions_file.strip()
    if configured:
        path = Path(configured).expanduser()
        try:
            stat = path.stat()
        except OSError as exc:
            raise ConfigError(
                f"hotline_jurisdictions_file {path} cannot be read ({exc.strerror})",
                hint="point hotline_jurisdictions_file at a JSON file, or leave it empty",
            ) from exc
        merged.update(_from_file(str(path), stat.st_mtime_ns, stat.st_size))
    return dict(sorted(merged.items()))


def check_jurisdiction(code: str | None, settings: JurisdictionSettings) -> str:
    """``code`` as a known jurisdiction's code (upper case); InputError listing the known
    ones when it is not."""
    known = jurisdictions(settings)
    clean = (code or "").strip().upper()
    if clean not in known:
        listed = ", ".join(known)
        what = f"{code!r} is not a known jurisdiction" if clean else "no jurisdiction given"
        raise InputError(
            what,
            hint=f"use one of {listed}; add others with hotline_jurisdictions_file",
        )
    return clean


@functools.cache
def _built_in() -> dict[str, Jurisdiction]:
    return _parse(json.loads(BUILT_IN.read_text(encoding="utf-8")), str(BUILT_IN))


@functools.lru_cache(maxsize=8)
def _from_file(path: str, _mtime_ns: int, _size: int) -> dict[str, Jurisdiction]:
    # Keyed on the file's mtime and size too: an edited file is read again.
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"hotline_jurisdictions_file {path} is not readable JSON: {exc}",
            hint="fix the file (see docs/hotline.md, Assessment) or leave the setting empty",
        ) from exc
    return _parse(data, path)


def _parse(data: Any, where: str) -> dict[str, Jurisdiction]:
    if not isinstance(data, dict):
        raise _shape(where, "the file must hold a JSON object: code -> jurisdiction")
    found: dict[str, Jurisdiction] = {}
    for key, entry in data.items():
        if key.startswith("_"):
            continue  # comments
        code = key.strip().upper()
        if not _CODE.fullmatch(code):
            raise _shape(where, f"{key!r} is not an ISO 3166-1 alpha-2 code")
        found[code] = _entry(code, entry, where)
    return found


def _entry(code: str, entry: Any, where: str) -> Jurisdiction:
    if not isinstance(entry, dict):
        raise _shape(where, f"{code}: each jurisdiction is an object with name and laws")
    raw_name = entry.get("name")
    if isinstance(raw_name, str):
        raw_name = {"en": raw_name}
    if not isinstance(raw_name, dict) or not _text(raw_name.get("en")):
        raise _shape(where, f"{code}: name must be a string or an object with at least 'en'")
    names = {
        lang: str(raw_name[lang]).strip() for lang in NAME_LANGUAGES if _text(raw_name.get(lang))
    }
    raw_laws = entry.get("laws", [])
    if not isinstance(raw_laws, list) or not raw_laws:
        raise _shape(where, f"{code}: laws must be a non-empty list of {{statute, articles}}")
    laws = []
    for law in raw_laws:
        if not isinstance(law, dict) or not _text(law.get("statute")):
            raise _shape(where, f"{code}: each law needs a statute (its name)")
        articles = law.get("articles", [])
        if not isinstance(articles, list) or not all(_text(a) for a in articles):
            raise _shape(where, f"{code}: a law's articles are a list of strings")
        laws.append(Law(str(law["statute"]).strip(), tuple(str(a).strip() for a in articles)))
    notes = entry.get("notes", "") or ""
    if not isinstance(notes, str) or len(notes) > _MAX_TEXT:
        raise _shape(where, f"{code}: notes must be a string of at most {_MAX_TEXT} characters")
    return Jurisdiction(code=code, names=names, laws=tuple(laws), notes=notes.strip())


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and len(value) <= _MAX_TEXT


def _shape(where: str, problem: str) -> ConfigError:
    return ConfigError(
        f"hotline_jurisdictions_file {where}: {problem}",
        hint='e.g. {"MX": {"name": {"en": "Mexico", "es": "México"}, "laws": '
        '[{"statute": "Código Penal Federal", "articles": ["202"]}], "notes": ""}}',
    )


__all__ = ["Jurisdiction", "Law", "check_jurisdiction", "jurisdictions"]
