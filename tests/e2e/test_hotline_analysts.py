"""Analysts' work on unknown hotline items outside the web pages, and the share-back form on
them: the queue, an assessment and a proposal over the API (reviewer scope) and on the command
line, and the item page's "share with partners" form (CSRF-checked, curator approval after)."""

from __future__ import annotations

import json
import re

from test_api_support import QUIET, Api, photo, sqlite_api
from test_hotline_review_web import core, csrf_of, sign_in
from typer.testing import CliRunner

from amparo.app import Amparo
from amparo.banks.model import BankInfo
from amparo.cli.main import app as cli
from amparo.clock import utc_now
from amparo.hotline.model import HotlineItem
from hotline_support import unknown_item

__all__ = ["sqlite_api"]
pytestmark = QUIET

PHOTO = photo("chelsea")


def _waiting(amparo: Amparo, n: int = 1) -> HotlineItem:
    records = amparo.hotline.records
    url = f"https://host.example/gallery/{n}"
    report, _ = records.submit(url, f"key-{n}", "host.example", at=utc_now(), channel="web")
    records.update(report.id, at=utc_now(), status="assessment")
    return unknown_item(amparo, report.id, PHOTO, media_url=url + "/p.jpg", mime="image/jpeg")


def test_the_api_queue_assessment_and_proposal(sqlite_api: Api) -> None:
    api, amparo = sqlite_api, core(sqlite_api)
    amparo.banks.create(BankInfo(name="shared"))
    item = _waiting(amparo)
    c = api.client
    queue = c.get("/v1/hotline/items", headers=api.as_("reviewer"))
    assert queue.status_code == 200 and [i["id"] for i in queue.json()] == [item.id]
    assert c.get("/v1/hotline/items", headers=api.as_("matcher")).status_code == 403

    url = f"/v1/hotline/items/{item.id}/assessment"
    bad = c.post(
        url, json={"assessment": "national", "jurisdiction": "ZZ"}, headers=api.as_("reviewer")
    )
    assert bad.status_code == 400 and "jurisdiction" in bad.json()["error"]["message"]
    assert c.post(url, json={"assessment": "maybe"}, headers=api.as_("reviewer")).status_code == 400
    done = c.post(
        url, json={"assessment": "national", "jurisdiction": "MX"}, headers=api.as_("reviewer")
    )
    assert done.status_code == 200 and done.json()["assessment"] == "national"
    assert amparo.hotline.records.get(item.report_id).status == "confirmed"

    propose = f"/v1/hotline/items/{item.id}/proposals"
    missing = c.post(propose, json={"bank": "shared"}, headers=api.as_("reviewer"))
    assert missing.status_code == 400  # the industry classification is required
    made = c.post(
        propose, json={"bank": "shared", "classification": "A2"}, headers=api.as_("reviewer")
    )
    assert made.status_code == 201 and made.json()["state"] == "pending"
    assert made.json()["jurisdiction"] == "MX"
    assert (
        c.post(
            f"/v1/hotline/items/{10**12}/assessment",
            json={"assessment": "baseline"},
            headers=api.as_("reviewer"),
        ).status_code
        == 404
    )


def test_the_command_line(sqlite_api: Api) -> None:
    amparo = core(sqlite_api)
    amparo.banks.create(BankInfo(name="shared"))
    item = _waiting(amparo)
    home = ["--home", str(sqlite_api.settings.home)]
    runner = CliRunner()
    listed = runner.invoke(cli, [*home, "hotline", "waiting", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout.splitlines()[0])["id"] == item.id
    refused = runner.invoke(cli, [*home, "hotline", "assess", str(item.id), "probably"])
    assert (
        refused.exit_code == 2 and "hint" in refused.output.lower()
    ) or "assessment" in refused.output
    assessed = runner.invoke(
        cli, [*home, "hotline", "assess", str(item.id), "baseline", "--analyst", "rita"]
    )
    assert assessed.exit_code == 0, assessed.output
    assert json.loads(assessed.stdout)["assessment"] == "baseline"
    entries = amparo.audit.entries(20, action="hotline.assess")
    assert entries and entries[0].actor == "local:rita"
    proposed = runner.invoke(
        cli,
        [*home, "hotline", "propose", str(item.id), "--bank", "shared", "--classification", "B1"],
    )
    assert proposed.exit_code == 0, proposed.output
    assert json.loads(proposed.stdout)["state"] == "pending"


def test_the_item_page_proposes_to_a_bank(sqlite_api: Api) -> None:
    api, amparo = sqlite_api, core(sqlite_api)
    amparo.banks.create(BankInfo(name="shared"))
    item = _waiting(amparo)
    amparo.hotline.assessments.assess(item.id, "baseline", actor="key:reviewer")
    c = api.client
    assert sign_in(c, api.keys["reviewer"]) == "/review/queue"
    page = c.get(f"/review/hotline/items/{item.id}")
    assert page.status_code == 200 and 'id="propose"' in page.text
    assert '<option value="shared">' in page.text
    url = f"/review/hotline/items/{item.id}/propose"
    form = {"bank": "shared", "classification": "A1", "note": "please"}
    assert c.post(url, data=form, follow_redirects=False).status_code == 403  # no CSRF token
    sent = c.post(url, data={**form, "csrf": csrf_of(page.text)}, follow_redirects=False)
    assert sent.status_code == 303
    proposal_id = int(re.search(r"proposed=(\d+)", sent.headers["location"]).group(1))  # type: ignore[union-attr]
    assert amparo.proposals.get(proposal_id).state == "pending"
    shown = c.get(sent.headers["location"])
    assert f"#{proposal_id}" in shown.text and 'id="proposed"' in shown.text
