"""The ``vics`` format: Project VIC's VICS 2.0 JSON (OData), as hash sets and cases.

Two layouts are read: a hash set (``value`` is a list of Media records, ``$metadata#Media``)
and a case (``value`` is a list of cases, each with a ``Media`` list, ``$metadata#Cases``).
A top-level ``Media`` list or a bare list of Media records is accepted too. Keys are matched
case-insensitively. From each Media record Amparo reads ``MD5``, ``SHA1``, ``SHA256`` and
``PDQ`` (each present hash is one entry), ``Category``, ``MediaID`` (-> source_id), ``Tags``
and ``Comments`` (-> note). ``PhotoDNA`` and everything else is ignored.

Category numbers become names through a category map; see ``CATEGORY_MAPS``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from amparo.banks.formats.base import IGNORE, Diagnostics, ReadOptions
from amparo.banks.model import EntryRecord
from amparo.errors import FormatError, InputError, InvalidSignalError
from amparo.signals import get_signal_type

log = logging.getLogger(__name__)

PROJECT_VIC: Mapping[int | str, str] = {
    0: IGNORE,
    1: "csam",
    2: "exploitative",
    3: "cgi_animation",
    4: "comparison",
}
"""The Project VIC (US) scheme as most tools read it. Tools disagree about 0: some call it
"uncategorized", some "non-pertinent"; neither is known abuse material, so both are mapped
to ``ignore``. Other national schemes (UK CAID, Canada) number differently: pass your own
map for those."""

CATEGORY_MAPS: Mapping[str, Mapping[int | str, str]] = {"project_vic": PROJECT_VIC, "raw": {}}
"""Built-in category maps. ``raw`` keeps the number as the category (``"1"``)."""

HASH_KEYS = (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256"), ("pdq", "PDQ"))
"""(signal type, VICS key) pairs, in the order a record's entries are produced."""

ODATA_CONTEXT = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Media"
)
_TAG_SPLIT = re.compile(r"[,;]")
_INT = re.compile(r"-?[0-9]+")
_CANONICAL_ID = re.compile(r"0|[1-9][0-9]*")
_CANONICAL_INT = re.compile(r"0|-?[1-9][0-9]*")


def resolve_category_map(
    category_map: Mapping[int | str, str] | str | None,
) -> Mapping[int | str, str]:
    """A built-in map by name, or a given map with numeric-string keys turned into ints."""
    if category_map is None:
        return PROJECT_VIC
    if isinstance(category_map, str):
        try:
            return CATEGORY_MAPS[category_map]
        except KeyError:
            raise InputError(
                f"unknown category map {category_map!r}",
                hint="built-in maps: " + ", ".join(CATEGORY_MAPS) + "; or pass a mapping",
            ) from None
    resolved: dict[int | str, str] = {}
    for key, name in category_map.items():
        if isinstance(key, str) and _INT.fullmatch(key.strip()):
            key = int(key)
        resolved[key] = name
    return resolved


_WANTED = frozenset(
    {"media", "category", "mediaid", "tags", "comments", "md5", "sha1", "sha256", "pdq"}
)


class _FieldPicker:
    """Picks the fields Amparo reads from a JSON object, matching keys case-insensitively.

    Key spellings repeat across a file, so each is lowered once; a record then costs one
    dict lookup per key instead of a freshly lowered copy of the record.
    """

    def __init__(self) -> None:
        self._names: dict[str, str | None] = {}

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        names = self._names
        picked: dict[str, Any] = {}
        for key, value in record.items():
            try:
                name = names[key]
            except KeyError:
                lowered = key.lower()
                name = names[key] = lowered if lowered in _WANTED else None
            if name is not None:
                picked[name] = value
        return picked


def _media_records(doc: Any, pick: _FieldPicker, diag: Diagnostics) -> list[Any]:
    """The Media records of a document, in order, whatever its layout."""
    if isinstance(doc, list):
        items: Any = doc
    elif isinstance(doc, dict):
        lowered = {str(k).lower(): v for k, v in doc.items()}
        items = lowered.get("value", lowered.get("media"))
        if not isinstance(items, list):
            raise _not_vics(diag, "no 'value' or 'Media' list at the top level")
    else:
        raise _not_vics(diag, "the document is not a JSON object")
    records: list[Any] = []
    for item in items:
        nested = pick(item).get("media") if isinstance(item, dict) else None
        if isinstance(nested, list):
            records.extend(nested)
        else:
            records.append(item)
    return records


def _not_vics(diag: Diagnostics, why: str) -> FormatError:
    return diag.fatal(
        f"not a VICS document: {why}",
        hint='expected {"value": [{"Media": [...]}]} or {"value": [<Media records>]}',
    )


class _NotANumber:
    """What :func:`_category_key` returns for a Category that is neither a number nor text."""


_NOT_A_NUMBER = _NotANumber()


def _category_key(value: Any) -> int | str | _NotANumber | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return _NOT_A_NUMBER
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        return int(text) if _INT.fullmatch(text) else text
    return _NOT_A_NUMBER


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t).strip() for t in value if str(t).strip()]
    if isinstance(value, str):
        return [t.strip() for t in _TAG_SPLIT.split(value) if t.strip()]
    return []


def _note(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value) or None
    return json.dumps(value)


def read_vics(stream: TextIO, options: ReadOptions, diag: Diagnostics) -> Iterator[EntryRecord]:
    text = stream.read().lstrip("\ufeff")
    try:
        doc = json.loads(text)
    except RecursionError:
        raise diag.fatal(
            "the JSON is nested too deeply to be a VICS file", hint="check the file's content"
        ) from None
    except json.JSONDecodeError as exc:
        raise diag.fatal(
            f"line {exc.lineno}: not valid JSON ({exc.msg})",
            hint="a VICS file is one JSON document; check it was not truncated",
            number=exc.lineno,
        ) from None
    pick = _FieldPicker()
    records = _media_records(doc, pick, diag)
    if isinstance(doc, dict) and not options.category_map_given:
        context = str(doc.get("@odata.context") or doc.get("odata.metadata") or "")
        if "/UK/" in context or "/CA/" in context:
            diag.warn(
                "this VICS file uses a national scheme other than Project VIC US; "
                "check its category numbers and pass a category map"
            )
    types = {name: get_signal_type(name) for name, _ in HASH_KEYS}
    hash_fields = [(name, key, key.lower()) for name, key in HASH_KEYS]
    category_map = options.category_map
    unknown_numbers: Counter[int | str] = Counter()
    ignored = hashless = 0
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            diag.problem(number, "a Media record must be a JSON object", unit="record")
            continue
        fields = pick(record)
        key = _category_key(fields.get("category"))
        if isinstance(key, _NotANumber):
            diag.problem(
                number, f"Category {fields.get('category')!r} is not a number", unit="record"
            )
            continue
        category: str | None = None
        if key is not None:
            mapped = category_map.get(key)
            if mapped is None:
                if category_map:
                    unknown_numbers[key] += 1
                mapped = str(key)
            category = mapped
        if category == IGNORE and options.skip_ignored:
            ignored += 1
            continue
        media_id = fields.get("mediaid")
        source_id = None if media_id is None or media_id == "" else str(media_id)
        raw_tags = fields.get("tags")
        tags = _tags(raw_tags) if raw_tags else []
        raw_note = fields.get("comments")
        note = _note(raw_note) if raw_note is not None else None
        found = False
        for name, vics_key, field_name in hash_fields:
            value = fields.get(field_name)
            if value is None or value == "":
                continue
            found = True
            if not isinstance(value, str):
                diag.problem(number, f"{vics_key} must be a string", unit="record")
                continue
            try:
                signal = types[name].normalize(value)
            except InvalidSignalError as exc:
                diag.problem(number, f"{vics_key}: {exc}", unit="record")
                continue
            yield EntryRecord(name, signal, category, list(tags), source_id, note)
        if not found:
            hashless += 1
    if unknown_numbers:
        listed = ", ".join(str(k) for k in sorted(unknown_numbers, key=str))
        diag.warn(f"category number(s) not in the category map, kept as text: {listed}")
    if ignored:
        diag.warn(f"skipped {ignored} record(s) in categories mapped to {IGNORE!r}")
    if hashless:
        diag.warn(
            f"{hashless} record(s) had no MD5, SHA1, SHA256 or PDQ hash (PhotoDNA is not read)"
        )


def _inverse(category_map: Mapping[int | str, str]) -> dict[str, int | str]:
    inverse: dict[str, int | str] = {}
    for key, name in category_map.items():
        if name not in inverse or (isinstance(key, int) and not isinstance(inverse[name], int)):
            inverse[name] = key
    return inverse


def write_vics(
    stream: TextIO, entries: Iterable[EntryRecord], category_map: Mapping[int | str, str]
) -> int:
    """Write a VICS 2.0 hash set. Consecutive entries with the same numeric source_id and
    metadata share one Media record (its MD5, SHA1, ... keys). Returns entries written."""
    inverse = _inverse(category_map)
    hash_keys = dict(HASH_KEYS)
    # VICS writes file digests in uppercase hex; PDQ stays as it is (lowercase)
    upper = {name for name in hash_keys if get_signal_type(name).exact}
    stream.write("{\n" + f'"@odata.context": {json.dumps(ODATA_CONTEXT)},\n' + '"value": [')
    pending: dict[str, Any] | None = None
    pending_meta: tuple[object, ...] = ()
    next_id = 1
    written = records = skipped = uncategorized = unnumbered = 0

    def flush() -> None:
        nonlocal records
        if pending is not None:
            stream.write(("\n" if records == 0 else ",\n") + json.dumps(pending))
            records += 1

    for entry in entries:
        vics_key = hash_keys.get(entry.signal_type)
        if vics_key is None:
            skipped += 1
            continue
        value = entry.signal.upper() if entry.signal_type in upper else entry.signal
        source = entry.source_id
        numeric = source is not None and _CANONICAL_ID.fullmatch(source) is not None
        meta = (source, entry.category, tuple(entry.tags), entry.note)
        if pending is not None and numeric and meta == pending_meta and vics_key not in pending:
            pending[vics_key] = value
            written += 1
            continue
        flush()
        if numeric:
            assert source is not None
            media_id = int(source)
        else:
            unnumbered += source is not None
            media_id = next_id
        next_id = max(next_id, media_id + 1)
        pending, pending_meta = {"MediaID": media_id}, meta
        if entry.category is not None:
            number = inverse.get(entry.category)
            if number is None and _CANONICAL_INT.fullmatch(entry.category):
                number = int(entry.category)
            if number is None:
                uncategorized += 1
            else:
                pending["Category"] = number
        pending[vics_key] = value
        if entry.tags:
            pending["Tags"] = ",".join(entry.tags)
        if entry.note:
            pending["Comments"] = entry.note
        written += 1
    flush()
    stream.write("\n]\n}\n")
    if skipped:
        log.warning("vics export skipped %d entries of signal types VICS cannot carry", skipped)
    if uncategorized:
        log.warning("vics export wrote %d entries without Category (no number)", uncategorized)
    if unnumbered:
        log.warning("vics export renumbered %d entries with non-numeric source ids", unnumbered)
    return written
