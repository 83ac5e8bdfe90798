"""The public report page's defences, after a security review: the rate limit holds under
concurrent posts and is given back for refused input; a flood of new addresses cannot reset a
client's window (open windows are never forgotten, new keys share one overflow window,
networks have a ceiling); the form's token is the server's (forged or expired pairs are
refused); a refused form echoes no more than a field may hold; and no decoded control or
space character gets into a reported URL's host."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import pytest
from fastapi.testclient import TestClient
from test_api_support import QUIET

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings
from amparo.errors import RateLimitedError, UrlRefusedError
from amparo.hotline.intake import MAX_COMMENT, MAX_CONTACT
from amparo.hotline.limits import NETWORK_FACTOR, ClientLimiter, Rate
from amparo.hotline.urls import MAX_URL_LENGTH, normalise
from amparo.web.report import FORM_COOKIE, FORM_SECONDS, FormTokens
from clocks import ManualClock, ManualMonotonic

pytestmark = QUIET

LIMIT = 3


@dataclass
class Page:
    client: TestClient

    @property
    def amparo(self) -> Amparo:
        amparo: Amparo = self.client.app.state.service.amparo  # type: ignore[attr-defined]
        return amparo

    def token(self, path: str = "/report?lang=es") -> str:
        response = self.client.get(path)
        assert response.status_code == 200
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        assert found is not None
        assert response.cookies.get(FORM_COOKIE) == found.group(1)
        return found.group(1)

    def send(self, **fields: str) -> httpx.Response:
        token = self.token()
        return self.client.post("/report", data={"csrf": token, "lang": "es", **fields})


@pytest.fixture
def page(sqlite_settings: Settings) -> Iterator[Page]:
    settings = replace(sqlite_settings, report_rate_limit=f"{LIMIT}/600", hotline_in_serve=False)
    with Amparo(settings):
        pass
    with TestClient(create_app(settings)) as client:
        yield Page(client)


# -- 1. the limit holds under concurrent posts ------------------------------------------------


def test_concurrent_posts_cannot_all_pass_the_limit(page: Page) -> None:
    token = page.token()

    async def flood() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=page.client.app, client=("203.0.113.7", 1))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", cookies={FORM_COOKIE: token}
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/report",
                        data={"csrf": token, "lang": "es", "url": f"https://example.com/{n}"},
                    )
                    for n in range(40)
                )
            )

    responses = asyncio.run(flood())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [303] * LIMIT + [429] * (40 - LIMIT)
    assert page.amparo.hotline.records.count() == LIMIT


def test_refused_input_gives_the_hit_back(page: Page) -> None:
    for _ in range(2 * LIMIT):
        assert page.send(url="http://192.168.0.10/fotos").status_code == 400
        assert page.send(url="mailto:x@example.com").status_code == 400
    for n in range(LIMIT):
        assert page.send(url=f"https://example.com/{n}").status_code == 200
    assert page.send(url="https://example.com/more").status_code == 429
    assert page.amparo.hotline.records.count() == LIMIT


def test_take_and_give_back() -> None:
    clock = ManualMonotonic()
    limiter = ClientLimiter(Rate(2, 60), clock=clock)
    first = limiter.take("198.51.100.7")
    limiter.take("198.51.100.7")
    with pytest.raises(RateLimitedError):
        limiter.take("198.51.100.7")
    limiter.give_back(first)
    limiter.take("198.51.100.7")
    with pytest.raises(RateLimitedError):
        limiter.check("198.51.100.7")


# -- 3. a flood of new addresses does not reset anyone's window -------------------------------


def test_open_windows_are_never_forgotten_and_new_keys_share_one_window() -> None:
    clock = ManualMonotonic()
    limiter = ClientLimiter(Rate(2, 60), clock=clock, max_clients=4)
    clients = [f"2001:db8:{n:x}::1" for n in range(4)]  # four /48s, no ceiling in the way
    for client in clients:
        limiter.take(client)
        limiter.take(client)
    # 100,000 rotating /64s would once have pushed these windows out; now they share one.
    rotating = (f"2001:db8:ffff:{n:x}::1" for n in range(1000))
    limiter.take(next(rotating))
    limiter.take(next(rotating))
    for address in rotating:
        with pytest.raises(RateLimitedError):
            limiter.take(address)
    assert len(limiter) == 4
    for client in clients:  # still limited: nothing was reset
        with pytest.raises(RateLimitedError):
            limiter.take(client)
    clock.advance(61)  # the windows pass: room for new clients of their own
    limiter.take("2001:db8:aaaa::1")
    limiter.take("2001:db8:aaaa::1")
    limiter.take("192.0.2.1")
    assert len(limiter) == 2


def test_networks_have_a_ceiling() -> None:
    limiter = ClientLimiter(Rate(2, 60), clock=ManualMonotonic())
    ceiling = 2 * NETWORK_FACTOR
    for n in range(ceiling):
        limiter.take(f"203.0.113.{n}")
    with pytest.raises(RateLimitedError):
        limiter.take("203.0.113.250")  # a fresh address of the same /24
    limiter.take("203.0.114.1")  # another /24
    for n in range(ceiling):
        limiter.take(f"2001:db8:1:{n:x}::1")  # another /64 each, one /48
    with pytest.raises(RateLimitedError):
        limiter.take("2001:db8:1:ffff::1")
    limiter.take("2001:db8:2::1")


# -- 4. the form's token is the server's ------------------------------------------------------


def test_a_forged_pair_is_refused(page: Page) -> None:
    # Any matching cookie and field once passed; now the token must be this server's.
    another_server = FormTokens(page.amparo.settings.home / "other.key")
    for token in ("abc.9999999999.xyz", "x", another_server.make(ManualClock()())):
        page.client.cookies.set(FORM_COOKIE, token, path="/report")
        response = page.client.post(
            "/report", data={"csrf": token, "lang": "es", "url": "https://example.com/"}
        )
        assert response.status_code == 403
        assert "El formulario caducó o no se envió desde esta página" in response.text
    assert page.amparo.hotline.records.count() == 0


def test_an_expired_form_is_shown_again(page: Page) -> None:
    clock = ManualClock()
    page.amparo.hotline.intake.ctx.clock = clock
    token = page.token()
    clock.advance(FORM_SECONDS + 1)
    response = page.client.post(
        "/report", data={"csrf": token, "lang": "es", "url": "https://example.com/"}
    )
    assert response.status_code == 403
    assert "El formulario caducó." in response.text
    assert 'value="https://example.com/"' in response.text  # kept for sending again
    assert page.send(url="https://example.com/").status_code == 200  # a fresh form works


def test_tokens_hold_across_workers_of_one_home(sqlite_settings: Settings) -> None:
    path = sqlite_settings.home / "keys" / "report-form.key"
    now = ManualClock()()
    token = FormTokens(path).make(now)
    assert FormTokens(path).verify(token, now) is None  # another worker, same key file
    nonce, expiry, mac = token.split(".")
    assert FormTokens(path).verify(f"{nonce}.{int(expiry) + 9999}.{mac}", now) == "forged"


# -- 5. a refused form echoes no more than a field holds --------------------------------------


def test_a_refused_form_echoes_fields_cut_to_their_limits(page: Page) -> None:
    # A 1,000,000-character comment fits the body limit (api_max_json_bytes, 1 MiB).
    response = page.send(
        url="https://example.com/" + "u" * 10_000,
        contact="c" * 10_000,
        comment="x" * 1_000_000,
    )
    assert response.status_code == 400
    assert len(response.text) < 50_000
    assert "x" * MAX_COMMENT in response.text and "x" * (MAX_COMMENT + 1) not in response.text
    assert "c" * MAX_CONTACT in response.text and "c" * (MAX_CONTACT + 1) not in response.text
    assert len(re.search(r'id="url"[^>]*value="([^"]*)"', response.text).group(1)) == (  # type: ignore[union-attr]
        MAX_URL_LENGTH
    )


# -- 2. no control or space character in a host -----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1%0a/",
        "http://example.com%0a/",
        "http://example.com%0A",
        "http://exa%0dmple.com/",
        "http://example.com%09/",
        "http://exa%00mple.com/",
        "http://exa%20mple.com/",
        "http://example.com%20/",
        "http://example.com%e2%80%a8/",
        "http://example.com%E2%80%A9/",
        "http://example.com%c2%85/",
        "http://example.com%7f/",
        "http://example.com\u2028/",
        "http://exa\u2029mple.com/",
    ],
)
def test_no_control_or_space_character_gets_into_a_host(url: str) -> None:
    with pytest.raises(UrlRefusedError):
        normalise(url)


def test_a_newline_in_the_host_is_refused_on_the_page(page: Page) -> None:
    response = page.send(url="http://example.com%0a/")
    assert response.status_code == 400
    assert "el host de la URL no es un nombre de dominio válido" in response.text
    assert page.amparo.hotline.records.count() == 0
    assert normalise("http://example.com/a%0ab").url == "http://example.com/a%0Ab"  # path: kept
