"""Languages: the report page, the reviewer and hotline pages, notices and scan reports speak
Spanish, Brazilian Portuguese and English, from gettext catalogues.

Catalogues are ``locale/<lang>/LC_MESSAGES/<domain>.po`` inside the package (one domain per
part: ``web`` for pages, ``notices`` for notices), read with Babel at first use and cached; a
message missing from a catalogue falls back to the English text in the code. The language
comes from an explicit choice (a ``lang`` query parameter or cookie), else the browser's
``Accept-Language``, else ``default``.
"""

from __future__ import annotations

import functools
import gettext
from collections.abc import Callable
from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES: dict[str, str] = {"es": "Español", "pt_BR": "Português (Brasil)", "en": "English"}
"""Supported languages: code -> the language's own name (for a language switcher)."""
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"

Translate = Callable[[str], str]


def supported(code: str | None) -> str | None:
    """The supported language a code names (``es-MX`` -> ``es``, ``pt-br`` -> ``pt_BR``,
    ``pt`` -> ``pt_BR``), or None."""
    if not code:
        return None
    code = code.strip().replace("-", "_")
    if not code or len(code) > 35:
        return None
    lang = code.partition("_")[0]
    lang = lang.lower()
    if lang == "pt":
        return "pt_BR"
    if lang in ("es", "en"):
        return lang
    return None


def negotiate(
    accept_language: str | None, *, chosen: str | None = None, default: str = DEFAULT_LANGUAGE
) -> str:
    """The language to answer in: ``chosen`` if supported, else the first supported one of
    an ``Accept-Language`` header by quality, else ``default``."""
    explicit = supported(chosen)
    if explicit:
        return explicit
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        found = supported(tag)
        if found and quality > 0:
            ranked.append((-quality, position, found))
    if ranked:
        return sorted(ranked)[0][2]
    return supported(default) or DEFAULT_LANGUAGE


@functools.cache
def translations(language: str, domain: str) -> gettext.NullTranslations:
    """The catalogue of ``domain`` in ``language`` (English: the messages themselves)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{domain}.po"
    if language == DEFAULT_LANGUAGE or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=domain)
    return _CatalogTranslations(
        {
            str(message.id): str(message.string)
            for message in catalog
            if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
        }
    )


class _CatalogTranslations(gettext.NullTranslations):
    def __init__(self, messages: dict[str, str]) -> None:
        super().__init__()
        self._messages = messages

    def gettext(self, message: str) -> str:
        return self._messages.get(message, message)


def translator(language: str, domain: str) -> Translate:
    """``_(message)`` for ``language``: the translation, or the message when there is none."""
    return translations(supported(language) or DEFAULT_LANGUAGE, domain).gettext
