"""``/v1/hotline`` in-process over reports made through the repository: scopes (reviewers and
curators read, curators act), filters and bad input as 4xx JSON with a hint, the detail with
items and notices, the actions calling their parts (fakes here: the parts have their own
tests), the figures as JSON and CSV, and the figures' Prometheus series."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hotline_stats_data import ODD_PROVIDER, SHA, T0, populate, stub_notice, stub_report
from test_api_support import QUIET, Api, make_keys

from amparo.api import create_app
from amparo.app import Amparo
from amparo.config import Settings, load_settings
from amparo.hotline.model import Notice, UrlReport

pytestmark = QUIET


@dataclass
class Served:
    api: Api
    amparo: Amparo
    ids: dict[str, int]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One app for the module (starting one takes seconds), its reports written before the
    first scrape of /metrics."""
    home = tmp_path_factory.mktemp("hotline-api") / "home"
    settings = load_settings(env={}, overrides={"home": home, "hotline_in_serve": False})
    keys = make_keys(settings)
    amparo = Amparo(settings)
    ids = populate(amparo.hotline.records)
    try:
        with TestClient(create_app(settings, amparo=amparo)) as client:
            yield Served(Api(client, settings, keys), amparo, ids)
    finally:
        amparo.close()


def _error(response: Any, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    body: dict[str, str] = response.json()["error"]
    assert body["message"] and body["hint"], body
    if code is not None:
        assert body["code"] == code
    return body


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    series = f"{name}{{{wanted}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {series} in the metrics")


def test_scopes(served: Served) -> None:
    a = served.api
    report = served.ids["fast"]
    reads = ["/v1/hotline/reports", f"/v1/hotline/reports/{report}", "/v1/hotline/stats"]
    for path in reads:
        assert a.client.get(path).status_code == 401
        for who in ("matcher", "hasher", "auditor"):
            _error(a.client.get(path, headers=a.as_(who)), 403, "permission_denied")
        for who in ("reviewer", "curator", "admin"):
            assert a.client.get(path, headers=a.as_(who)).status_code == 200, (path, who)
    for action in ("crawl", "recheck", "notify"):
        path = f"/v1/hotline/reports/{report}/{action}"
        for who in ("reviewer", "matcher", "auditor"):
            _error(a.client.post(path, headers=a.as_(who)), 403, "permission_denied")


def test_list_and_filters(served: Served) -> None:
    a, ids = served.api, served.ids
    get = a.client.get
    listed = get("/v1/hotline/reports", headers=a.as_("reviewer")).json()
    assert [r["id"] for r in listed] == sorted(ids.values(), reverse=True)
    open_ = get("/v1/hotline/reports?status=open", headers=a.as_("reviewer")).json()
    assert {r["id"] for r in open_} == {ids["online"], ids["new"]}
    mx = get("/v1/hotline/reports?country=mx", headers=a.as_("curator")).json()
    assert {r["id"] for r in mx} == {ids["fast"], ids["slow"]}
    assert mx[0]["attribution"]["provider"] == "Hoster A"
    page = get("/v1/hotline/reports?limit=2&offset=1", headers=a.as_("curator")).json()
    assert [r["id"] for r in page] == sorted(ids.values(), reverse=True)[1:3]

    body = _error(get("/v1/hotline/reports?status=gone", headers=a.as_("curator")), 400)
    assert "open" in (body["hint"] or "")
    _error(get("/v1/hotline/reports?country=MEX", headers=a.as_("curator")), 400)
    _error(get("/v1/hotline/reports?limit=0", headers=a.as_("curator")), 400)


def test_detail(served: Served) -> None:
    a, ids = served.api, served.ids
    shown = a.client.get(f"/v1/hotline/reports/{ids['fast']}", headers=a.as_("reviewer")).json()
    assert shown["status"] == "removed" and shown["attribution"]["country"] == "MX"
    assert shown["items"][0]["sha256"] == SHA and shown["items"][0]["status"] == "verified"
    assert shown["items"][0]["matches"][0]["entry_id"] == 7
    assert shown["notices"][0]["recipient"] == "abuse@a.example" and shown["notices"][0]["ok"]
    assert shown["submitted"][0]["channel"] == "web"
    assert "contact" not in shown["submitted"][0]
    online = a.client.get(f"/v1/hotline/reports/{ids['online']}", headers=a.as_("curator"))
    assert online.json()["attribution"]["provider"] == ODD_PROVIDER
    assert [n["ok"] for n in online.json()["notices"]] == [True, False]

    body = _error(a.client.get("/v1/hotline/reports/999999", headers=a.as_("curator")), 404)
    assert "amparo hotline list" in body["hint"]
    for bad in ("0", "abc", str(2**63)):
        _error(a.client.get(f"/v1/hotline/reports/{bad}", headers=a.as_("curator")), 400)


def test_actions_call_the_parts(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    a, ids, hotline = served.api, served.ids, served.amparo.hotline
    calls: list[tuple[Any, ...]] = []

    def crawl(report_id: int, *, actor: str) -> UrlReport:
        calls.append(("crawl", report_id, actor))
        return stub_report(report_id, "confirmed")

    def recheck(report_id: int, *, actor: str) -> UrlReport:
        calls.append(("recheck", report_id, actor))
        return stub_report(report_id, "removed")

    def notify(report_id: int, *, actor: str, force: bool = False) -> list[Notice]:
        calls.append(("notify", report_id, actor, force))
        return [stub_notice(report_id, 1)]

    monkeypatch.setattr(hotline.verifier, "crawl", crawl)
    monkeypatch.setattr(hotline.rechecker, "recheck", recheck)
    monkeypatch.setattr(hotline.notifier, "notify", notify)
    report = ids["online"]
    base = f"/v1/hotline/reports/{report}"
    response = a.client.post(base + "/crawl", headers=a.as_("curator"))
    assert response.status_code == 200 and response.json()["status"] == "confirmed"
    response = a.client.post(base + "/recheck", headers=a.as_("admin"))
    assert response.status_code == 200 and response.json()["status"] == "removed"
    response = a.client.post(base + "/notify?force=true", headers=a.as_("curator"))
    assert response.status_code == 200 and response.json()[0]["recipient"] == "abuse@x.example"
    assert calls == [
        ("crawl", report, "key:curator"),
        ("recheck", report, "key:admin"),
        ("notify", report, "key:curator", True),
    ]
    # An unknown report is a 404 before any part is called.
    _error(a.client.post("/v1/hotline/reports/999999/crawl", headers=a.as_("curator")), 404)
    assert len(calls) == 3


def test_stats_json_and_csv(served: Served) -> None:
    a = served.api
    figures = a.client.get("/v1/hotline/stats", headers=a.as_("reviewer")).json()
    overall = figures["overall"]
    assert (overall["reports"], overall["open_urls"], overall["notices_sent"]) == (4, 2, 5)
    assert overall["removal_hours"] == {"p50": 2.0, "p90": 50.0, "p99": 50.0}
    assert overall["removed_within"]["7d"] == pytest.approx(2 / 3)
    assert figures["by_status"]["removed"] == 2 and figures["by_status"]["notified"] == 1
    assert [g["name"] for g in figures["by_provider"]] == ["Hoster A", ODD_PROVIDER, "unknown"]
    assert sum(b["reports"] for b in figures["removal_buckets"]) == 2

    response = a.client.get("/v1/hotline/stats?format=csv", headers=a.as_("curator"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert rows[0]["scope"] == "overall" and rows[0]["notices_sent"] == "5"
    assert {r["name"] for r in rows if r["scope"] == "country"} == {"MX", "BR", "unknown"}
    _error(a.client.get("/v1/hotline/stats?format=xml", headers=a.as_("curator")), 400)


def test_metrics_show_the_figures(served: Served) -> None:
    a = served.api
    text = a.client.get("/metrics", headers=a.as_("auditor")).text
    assert sample(text, "amparo_hotline_figures_error") == 0
    assert sample(text, "amparo_hotline_reports", status="removed") == 2
    assert sample(text, "amparo_hotline_reports", status="new") == 1
    assert sample(text, "amparo_hotline_reports", status="closed") == 0
    assert sample(text, "amparo_hotline_open_urls") == 2
    assert sample(text, "amparo_hotline_notices_sent_total") == 5
    assert sample(text, "amparo_hotline_removed") == 2
    assert sample(text, "amparo_hotline_reappearances") == 1
    assert sample(text, "amparo_hotline_removal_hours", quantile="0.5") == 2
    assert sample(text, "amparo_hotline_removal_hours", quantile="0.99") == 50


def test_collector_reports_an_error_and_caches() -> None:
    from amparo.api.metrics_hotline import HotlineCollector
    from amparo.hotline.figures import compute_figures

    calls: list[int] = []
    now = [0.0]

    def figures() -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return compute_figures([], {}, T0)

    collector = HotlineCollector(figures, cache_seconds=10, clock=lambda: now[0])
    families = {m.name: m for m in collector.collect()}
    assert families["amparo_hotline_figures_error"].samples[0].value == 1
    assert "amparo_hotline_reports" not in families
    now[0] = 11.0
    families = {m.name: m for m in collector.collect()}
    assert families["amparo_hotline_figures_error"].samples[0].value == 0
    assert families["amparo_hotline_removal_hours"].samples == []  # none removed yet
    now[0] = 12.0
    collector.collect()
    assert len(calls) == 2  # cached


# -- the stats page (server side; tests/e2e/test_hotline_stats_browser.py drives a browser) --


def _sign_in(client: TestClient, key: str) -> None:
    page = client.get("/review/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', page.text)
    assert pre is not None
    response = client.post(
        "/review/signin", data={"key": key, "pre": pre.group(1)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


@pytest.fixture
def browser_client(served: Served) -> Iterator[TestClient]:
    # Its own cookie jar: signing in here does not sign the API tests' client in.
    with TestClient(served.api.client.app) as client:
        yield client


def test_stats_page_needs_a_session(browser_client: TestClient) -> None:
    response = browser_client.get("/review/hotline/stats", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/review/signin"
    response = browser_client.get("/review/hotline/stats?format=csv", follow_redirects=False)
    assert response.status_code == 303


@pytest.mark.parametrize(
    ("lang", "accept", "says"),
    [
        (None, "es-MX,es;q=0.9", "Cifras de la línea de denuncia"),
        ("pt_BR", "es", "Números do canal de denúncia"),
        ("en", "es", "Hotline figures"),
    ],
)
def test_stats_page_in_each_language(
    served: Served, browser_client: TestClient, lang: str | None, accept: str, says: str
) -> None:
    _sign_in(browser_client, served.api.keys["reviewer"])
    url = "/review/hotline/stats" + (f"?lang={lang}" if lang else "")
    response = browser_client.get(url, headers={"Accept-Language": accept})
    assert response.status_code == 200
    html = response.text
    assert says in html
    assert html.count("<svg") == 3 and 'role="img"' in html
    assert "Hoster &lt;B&gt; &amp; &#34;Sons&#34;" in html or "Hoster &lt;B&gt;" in html
    assert "<B>" not in html  # a provider's name is text, never markup
    assert "style=" not in html and "<script>" not in html
    assert 'href="/review/static/hotline.css"' in html
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


def test_stats_page_numbers_are_localised(served: Served, browser_client: TestClient) -> None:
    _sign_in(browser_client, served.api.keys["curator"])
    html = browser_client.get("/review/hotline/stats?lang=es").text
    assert "México (MX)" in html and "Brasil (BR)" in html  # country names in Spanish
    assert "33" in html and "%" in html
    assert "2,0" in html  # median hours with a decimal comma
    english = browser_client.get("/review/hotline/stats?lang=en").text
    assert "Mexico (MX)" in english and "2.0" in english


def test_stats_downloads(served: Served, browser_client: TestClient) -> None:
    _sign_in(browser_client, served.api.keys["reviewer"])
    csv_ = browser_client.get("/review/hotline/stats?format=csv")
    assert csv_.status_code == 200 and csv_.headers["content-type"].startswith("text/csv")
    assert csv_.text.startswith("scope,name,reports")
    json_ = browser_client.get("/review/hotline/stats?format=json")
    assert json_.status_code == 200 and json_.json()["overall"]["reports"] == 4
    assert "attachment" in json_.headers["content-disposition"]
    css = browser_client.get("/review/static/hotline.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_figures_from_the_database(settings: Settings) -> None:
    """The repository walk behind every view of the figures, on SQLite and PostgreSQL."""
    with Amparo(replace(settings, hotline_in_serve=False)) as amparo:
        populate(amparo.hotline.records)
        figures = amparo.hotline.figures.compute()
    overall = figures["overall"]
    assert (overall["reports"], overall["open_urls"], overall["notices_sent"]) == (4, 2, 5)
    assert overall["removal_hours"] == {"p50": 2.0, "p90": 50.0, "p99": 50.0}
    assert {g["name"]: g["reports"] for g in figures["by_country"]} == {
        "MX": 2,
        "BR": 1,
        "unknown": 1,
    }
