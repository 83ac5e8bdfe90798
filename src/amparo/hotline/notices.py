"""Notices to hosts and forwards to partner hotlines: what they say, in which language, and to
whom (how they travel: :mod:`amparo.hotline.delivery`).

A *notice* names the reported URL, every confirmed item's media URL and hashes (SHA-256, MD5,
PDQ), the classification and its legal basis, the report's id and first-seen time, and what is
asked (remove or disable access, preserve data for law enforcement, reply to the hotline). It
never carries media, thumbnails or attachments. Its language follows the hosting country
(Spanish-speaking countries: ``es``; Brazil and Portugal: ``pt_BR``; else ``en``).

A *forward* goes to the partner hotline of the hosting country: the same facts as a JSON
export, signed with the installation's feed key (Ed25519 over the canonical JSON, see
:mod:`amparo.exchanges.signing`); :func:`verify_forward` is what a receiving Amparo (or any
peer with the public key) runs to check it.

Pure: no storage (the import-linter contract ``no-storage-below`` holds this module to it);
:mod:`amparo.hotline.notifying` decides what is due and records what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from amparo.errors import InputError
from amparo.exchanges.signing import FeedSigner, load_public_key, verify
from amparo.hotline.model import HotlineItem, UrlReport
from amparo.hotline.partners import Partner
from amparo.i18n import Translate, translator

DOMAIN = "notices"
FORWARD_FORMAT = "amparo.hotline.forward"
FORWARD_VERSION = 1
NOTICE_VERSION = 1

# -- content ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One notice (or forward) in one language: the email's subject, text and HTML, and the
    same facts as JSON (the webhook body)."""

    kind: str
    language: str
    subject: str
    text: str
    html: str
    payload: dict[str, Any]


def legal_basis(item: HotlineItem, _: Translate) -> str:
    """Why the item is illegal, as a notice says it."""
    if item.assessment == "national" and item.jurisdiction:
        return _("illegal under the law of {jurisdiction}").format(
            jurisdiction=item.jurisdiction.upper()
        )
    return _("illegal internationally (INTERPOL baseline)")


def _classification(item: HotlineItem) -> str:
    return item.assessment if item.assessment in ("baseline", "national") else "baseline"


def item_facts(item: HotlineItem) -> dict[str, Any]:
    """An item as notices and exports name it: URL and hashes, never media."""
    return {
        "media_url": item.media_url,
        "sha256": item.sha256,
        "md5": item.md5,
        "pdq": item.pdq,
        "classification": _classification(item),
        "jurisdiction": item.jurisdiction.upper() if item.jurisdiction else None,
        "first_seen": item.first_seen.isoformat(),
    }


def _first_seen(report: UrlReport, items: Sequence[HotlineItem]) -> datetime:
    return min([report.created_at, *(i.first_seen for i in items)])


def render_notice(
    report: UrlReport,
    items: Sequence[HotlineItem],
    *,
    kind: str,
    language: str,
    hotline: str,
    reply_to: str,
    number: int = 1,
    partner: Partner | None = None,
) -> Rendered:
    """The notice ``number`` (1: the first) of ``kind`` (``notice``, ``repeat``,
    ``escalation``, ``forward``) for ``report`` naming its confirmed ``items``."""
    _ = translator(language, DOMAIN)
    urgent = kind == "escalation"
    cdn = bool(report.attribution and report.attribution.cdn)
    first_seen = _first_seen(report, items)
    if kind == "forward":
        subject = _(
            "[{hotline}] Forwarded report {id}: child sexual abuse material hosted in {country}"
        )
    elif number > 1:
        subject = _(
            "[{hotline}] Repeat notice {number}: child sexual abuse material at {host} "
            "(report {id})"
        )
    else:
        subject = _("[{hotline}] Notice: child sexual abuse material at {host} (report {id})")
    subject = subject.format(
        hotline=hotline,
        id=report.id,
        host=report.host,
        number=number,
        country=report.country or "?",
    )
    if urgent:
        subject = _("URGENT") + " " + subject

    paragraphs: list[str] = []
    if urgent:
        paragraphs.append(
            _(
                "URGENT: this content is still online after {count} notices. The case has been "
                "escalated."
            ).format(count=number - 1)
        )
    if kind == "forward":
        paragraphs.append(
            _(
                "{hotline} received a report of child sexual abuse material hosted in your "
                "country ({country}). We forward it to you, our partner hotline, for action "
                "under your procedures. The attached file report-{id}.json holds the same facts "
                "as signed JSON (no media)."
            ).format(hotline=hotline, country=report.country or "?", id=report.id)
        )
    else:
        paragraphs.append(
            _(
                "{hotline} has confirmed child sexual abuse material at the address below, "
                "served from your network."
            ).format(hotline=hotline)
        )
        if cdn:
            paragraphs.append(
                _(
                    "This address is served through your content delivery network. Please "
                    "tell us the origin host (or forward this notice to its operator) and "
                    "disable access through your network."
                )
            )
        if number > 1:
            paragraphs.append(
                _(
                    "This is notice number {number} for this report; the content is still online."
                ).format(number=number)
            )

    facts = [
        _("Report: {id}").format(id=report.id),
        _("Reported URL: {url}").format(url=report.url),
        _("First seen: {when}").format(when=first_seen.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    item_lines: list[list[str]] = []
    for index, item in enumerate(items, 1):
        lines = [
            _("Item {n}: {url}").format(n=index, url=item.media_url),
            "  SHA-256: " + item.sha256,
        ]
        if item.md5:
            lines.append("  MD5: " + item.md5)
        if item.pdq:
            lines.append("  PDQ: " + item.pdq)
        lines.append("  " + _("Classification: {basis}").format(basis=legal_basis(item, _)))
        item_lines.append(lines)

    if kind == "forward":
        asked = [
            _("Please confirm receipt to {address}, quoting report {id}.").format(
                address=reply_to, id=report.id
            )
        ]
    else:
        asked = [
            _("We ask you to:"),
            "- " + _("remove the content or disable access to it without delay;"),
            "- "
            + _(
                "preserve the related data (logs, account and payment details) for law enforcement;"
            ),
            "- "
            + _("reply to {address} when it is done, quoting report {id}.").format(
                address=reply_to, id=report.id
            ),
        ]
    closing = _(
        "This message contains no images or attachments with the content itself: only "
        "addresses and hashes."
    )

    text_parts = [
        *paragraphs,
        "\n".join(facts),
        *("\n".join(lines) for lines in item_lines),
        "\n".join(asked),
        closing,
        "-- \n" + hotline,
    ]
    text = "\n\n".join(text_parts) + "\n"
    html_parts = [
        f"<p><strong>{escape(p)}</strong></p>" if urgent and i == 0 else f"<p>{escape(p)}</p>"
        for i, p in enumerate(paragraphs)
    ]
    html_parts.append("<p>" + "<br>".join(escape(f) for f in facts) + "</p>")
    html_parts.extend(
        "<p><code>" + "<br>".join(escape(line) for line in lines) + "</code></p>"
        for lines in item_lines
    )
    html_parts.append(f"<p>{escape(asked[0])}</p>")
    if asked[1:]:
        html_parts.append(
            "<ul>" + "".join(f"<li>{escape(line[2:])}</li>" for line in asked[1:]) + "</ul>"
        )
    html_parts.append(f"<p>{escape(closing)}</p><p>{escape(hotline)}</p>")
    html = (
        f'<!DOCTYPE html><html lang="{language.replace("_", "-")}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body>{''.join(html_parts)}</body></html>"
    )
    payload = {
        "type": "amparo.hotline.notice",
        "version": NOTICE_VERSION,
        "kind": kind,
        "number": number,
        "urgent": urgent,
        "language": language,
        "subject": subject,
        "text": text,
        "hotline": {"name": hotline, "reply_to": reply_to},
        "report": {
            "id": report.id,
            "url": report.url,
            "host": report.host,
            "country": report.country,
            "first_seen": first_seen.isoformat(),
            "cdn": cdn,
        },
        "items": [item_facts(item) for item in items],
        "asked": ["remove_or_disable", "preserve_data", "reply"] if kind != "forward" else [],
    }
    if partner is not None:
        payload["partner"] = {"country": partner.country, "name": partner.name}
    return Rendered(kind, language, subject, text, html, payload)


# -- the signed export of a forward -------------------------------------------------------


def forward_export(
    report: UrlReport,
    items: Sequence[HotlineItem],
    *,
    organisation: str,
    hotline: str,
    reply_to: str,
    partner: Partner,
    at: datetime,
) -> dict[str, Any]:
    """What a forward says, as JSON (the object that is signed)."""
    return {
        "format": FORWARD_FORMAT,
        "version": FORWARD_VERSION,
        "from": {"organisation": organisation, "hotline": hotline, "reply_to": reply_to},
        "to": {"country": partner.country, "name": partner.name},
        "sent_at": at.isoformat(),
        "report": {
            "id": report.id,
            "url": report.url,
            "host": report.host,
            "first_seen": _first_seen(report, items).isoformat(),
        },
        "items": [item_facts(item) for item in items],
        "attribution": report.attribution.to_json() if report.attribution else None,
    }


def sign_forward(export: dict[str, Any], signer: FeedSigner) -> dict[str, Any]:
    """The export as sent: ``{"export": ..., "key_id": ..., "signature": base64}``, the
    signature an Ed25519 signature over ``canonical(export)``."""
    return {"export": export, "key_id": signer.key_id, "signature": signer.sign(export)}


def verify_forward(
    data: Mapping[str, Any] | str | bytes, public_key: Ed25519PublicKey | str | bytes
) -> dict[str, Any]:
    """Check a forwarded report (the JSON file or its parsed object) with the sender's public
    key (PEM, as ``amparo feeds key`` prints it, or a loaded key); return the export.

    Raises :class:`~amparo.errors.FeedVerificationError` when the signature does not hold
    (altered, or signed by another key) and :class:`~amparo.errors.InputError` when it is
    not a forward at all."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise InputError(
                "the forwarded report is not JSON", hint="give the report-<id>.json file as sent"
            ) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("export"), dict):
        raise InputError(
            "not a forwarded report (no export object)",
            hint="give the report-<id>.json file as sent",
        )
    export: dict[str, Any] = data["export"]
    key = (
        public_key
        if isinstance(public_key, Ed25519PublicKey)
        else load_public_key(public_key, what="the sender's public key")
    )
    try:
        verify(key, export, data.get("signature"), what="the forwarded report")
    except UnicodeEncodeError:  # a lone surrogate: the JSON holds no valid text
        raise InputError(
            "the forwarded report holds text that is not valid Unicode",
            hint="give the report-<id>.json file as sent",
        ) from None
    if export.get("format") != FORWARD_FORMAT:
        raise InputError(
            f"not a forwarded report (format {export.get('format')!r})",
            hint=f"a forward's export has format {FORWARD_FORMAT!r}",
        )
    return export
