"""Reported URLs in one normal form, so that every report of the same page finds the same row.

:func:`normalise` accepts what people paste (``example.com/a``, ``HTTP://Example.COM:80/./a``,
``https://ejemplo.mx/niño``) and returns the URL a browser would request, minus what does not
name the content: the default port, the fragment, the tracking parameters (``utm_*``,
``fbclid``, ``gclid``, ...). The host is lower case and IDNA-encoded (UTS #46, as browsers do);
IPv4 addresses written as browsers still accept them (``2130706433``, ``0x7f.1``) become
dotted quads, so a private address cannot hide behind another spelling. The report's key is
the SHA-256 of the normal form.

Nothing here fetches or resolves a name: whether the address is reachable is for the crawl
(:mod:`amparo.url_policy`). Refusals are :class:`~amparo.errors.UrlRefusedError` with fixed
English messages (the report page translates them) that never repeat the input.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, quote, unquote, urlsplit

import idna

from amparo.errors import UrlRefusedError

MAX_URL_LENGTH = 2048
"""Longest URL accepted, before and after normalisation (browsers and servers cut near it)."""
TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "mc_eid"}
)
"""Query parameters that say how someone arrived, not what the page shows: dropped."""
DEFAULT_PORTS = {"http": 80, "https": 443}

# Characters left as they are in a path or query (RFC 3986 reserved and unreserved, and '%'
# for escapes already there); anything else (spaces, non-ASCII) is percent-encoded as UTF-8.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_PORT_ONLY = re.compile(r"^[0-9]*(?:[/?#]|$)")
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_HOSTISH = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+\.[^\s/?#@:\[\]]+)(?::[0-9]*)?")


@dataclass(frozen=True)
class NormalisedUrl:
    """A reported URL in normal form: ``url``, its ``host`` (IDNA, lower case; an IPv6
    address without brackets), and ``key``, the SHA-256 (hex) of ``url``."""

    url: str
    host: str
    key: str

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The host as an IP address when it is one (written in the URL), else None."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def _refuse(message: str, hint: str) -> UrlRefusedError:
    return UrlRefusedError(message, hint=hint)


def normalise(url: str) -> NormalisedUrl:
    """The normal form of ``url`` (see the module's docstring); refuses what is not an http(s)
    URL of a host: other schemes, credentials, control characters, over-long URLs, malformed
    hosts and ports."""
    if not isinstance(url, str):
        raise _refuse("the URL must be text", "give the address as a string")
    text = url.strip()
    if not text:
        raise _refuse("no URL was given", "give the page's address, e.g. https://example.com/page")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no character any URL can hold
        raise _refuse(
            "the URL has characters that are not valid text", "give the address as it is written"
        ) from None
    if len(text) > MAX_URL_LENGTH:
        raise _refuse(
            "the URL is too long",
            f"a reported URL has at most {MAX_URL_LENGTH} characters",
        )
    if any(_is_control(c) for c in text):
        raise _refuse(
            "the URL contains control characters",
            "copy the address from the browser's address bar",
        )
    parts = _split(_with_scheme(text))
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse(
            "only http and https URLs can be reported",
            "give a web address starting with http:// or https://",
        )
    netloc = parts.netloc
    if "@" in netloc:
        raise _refuse(
            "URLs with a user name or password are not accepted",
            "remove the part before '@' in the address",
        )
    host = _host(parts)
    port = _port(parts)
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        authority += f":{port}"
    path = _remove_dot_segments(_escaped(parts.path, _PATH_SAFE)) or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = _query(parts.query)
    normal = f"{scheme}://{authority}{path}" + (f"?{query}" if query else "")
    if any(_is_control(c) or c.isspace() for c in normal):
        # Nothing decoded (a %0a in the host) may put a line break or space into the key.
        raise _refuse(
            "the URL contains control characters",
            "copy the address from the browser's address bar",
        )
    if len(normal) > MAX_URL_LENGTH:
        raise _refuse(
            "the URL is too long",
            f"a reported URL has at most {MAX_URL_LENGTH} characters",
        )
    return NormalisedUrl(normal, host, hashlib.sha256(normal.encode()).hexdigest())


def _with_scheme(text: str) -> str:
    """``text`` with ``http://`` in front when it names a host without a scheme."""
    scheme = _SCHEME.match(text)
    if scheme and text[scheme.end() :].startswith("//"):
        return text
    if text.startswith("//"):
        return "http:" + text
    if scheme and not _PORT_ONLY.match(text[scheme.end() :]):
        # mailto:, javascript:, data:, file: ... (a host:port is not a scheme)
        raise _refuse(
            "only http and https URLs can be reported",
            "give a web address starting with http:// or https://",
        )
    authority = re.split(r"[/?#]", text, maxsplit=1)[0]
    if not _HOSTISH.fullmatch(authority):
        raise _refuse(
            "this does not look like a web address",
            "give the page's full address, e.g. https://example.com/page",
        )
    return "http://" + text


def _split(text: str) -> SplitResult:
    try:
        parts = urlsplit(text)
    except ValueError:
        raise _refuse(
            "this does not look like a web address",
            "give the page's full address, e.g. https://example.com/page",
        ) from None
    return parts


def _port(parts: SplitResult) -> int | None:
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port == 0 or port == -1:
        raise _refuse("the URL's port is not valid", "a port is a number from 1 to 65535")
    return port


def _host(parts: SplitResult) -> str:
    raw = parts.hostname or ""
    if parts.netloc.startswith("["):
        try:
            return str(ipaddress.IPv6Address(raw.split("%")[0]))
        except ValueError:
            raise _refuse(
                "the URL's host is not a valid address",
                "an IPv6 address is written in brackets, e.g. http://[2001:db8::1]/",
            ) from None
    host = unquote(raw)
    if any(_is_control(c) or c.isspace() or not c.isprintable() for c in host):
        # %0a, %00, %20, %e2%80%a8 ... decoded: no host has them.
        raise _refuse(
            "the URL's host is not a valid domain name", "check the spelling of the site's name"
        )
    host = host.rstrip(".")
    if not host:
        raise _refuse(
            "the URL has no host", "give the page's full address, e.g. https://example.com/page"
        )
    ipv4 = _ipv4(host)
    if ipv4 is not None:
        return ipv4
    if host.isascii():
        ascii_host = host.lower()
    else:
        try:
            ascii_host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            raise _refuse(
                "the URL's host is not a valid domain name",
                "check the spelling of the site's name",
            ) from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse(
            "the URL's host is not a valid domain name", "check the spelling of the site's name"
        )
    return ascii_host


def _is_control(char: str) -> bool:
    """A C0 or C1 control character, DEL, or a Unicode line or paragraph separator."""
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F or char in "\u2028\u2029"


def _ipv4(host: str) -> str | None:
    """The dotted quad of a host browsers read as IPv4 (WHATWG URL: the last label is a
    number, decimal, ``0x`` hex or ``0`` octal; fewer than four parts fill the last), or None
    when the host is a name. A host that looks numeric but is no valid address is refused."""
    labels = host.split(".")
    if _number(labels[-1]) is None:
        return None
    if len(labels) > 4 or any(_number(label) is None for label in labels):
        raise _refuse(
            "the URL's host is not a valid address", "an IPv4 address is written like 192.0.2.1"
        )
    numbers = [_number(label) or 0 for label in labels]
    *first, last = numbers
    if any(n > 255 for n in first) or last >= 256 ** (5 - len(numbers)):
        raise _refuse(
            "the URL's host is not a valid address", "an IPv4 address is written like 192.0.2.1"
        )
    value = last
    for position, number in enumerate(first):
        value += number << (8 * (3 - position))
    return str(ipaddress.IPv4Address(value))


def _number(label: str) -> int | None:
    """The number a label of an IPv4 host spells (0 counts), else None."""
    try:
        if re.fullmatch(r"0[xX][0-9A-Fa-f]*", label):
            return int(label[2:] or "0", 16)
        if re.fullmatch(r"0[0-7]+", label):
            return int(label, 8)
        if re.fullmatch(r"[0-9]+", label):
            return int(label)
    except ValueError:
        return None
    return None


def _escaped(text: str, safe: str) -> str:
    """``text`` percent-encoded where needed, escapes in upper case, unreserved characters
    never escaped (``%7E`` -> ``~``; ``%2F`` stays)."""
    quoted = quote(text, safe=safe, encoding="utf-8", errors="strict")
    # A '%' not starting an escape is itself escaped.
    quoted = re.sub(r"%(?![0-9A-Fa-f]{2})", "%25", quoted)

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _ESCAPE.sub(one, quoted)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986, 5.2.4: ``/a/./b/../c`` -> ``/a/c``."""
    output: list[str] = []
    segments = path.split("/")
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    return "/".join(output)


def _query(query: str) -> str:
    kept = []
    for pair in query.split("&"):
        if not pair:
            continue
        name = unquote(pair.partition("=")[0]).lower()
        if name.startswith(TRACKING_PREFIXES) or name in TRACKING_PARAMS:
            continue
        kept.append(_escaped(pair, _QUERY_SAFE))
    return "&".join(kept)


__all__ = ["MAX_URL_LENGTH", "NormalisedUrl", "normalise"]
