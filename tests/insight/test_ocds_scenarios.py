"""OCDS releases from scenarios built through the real services: a co-funded call-off that is
invoiced and paid, and an awarded further competition. Every package validates offline (0
errors, closed codelists included) with the local extensions; figures are exact."""

from __future__ import annotations

from marketplace.accounts.queries import classifications_in_force
from marketplace.insight.identifiers import call_off_ocid, competition_ocid, dynamic_market_ocid
from marketplace.insight.ocds.common import london_day
from tests.insight.ocds_scenarios import awarded_competition, paid_co_funded_call_off
from tests.insight.ocds_validation import assert_valid


def every_release(client, limit=3):
    """Walk the release pages by their ``links.next``: every release, oldest first."""
    url = f"/api/v1/ocds/releases?limit={limit}"
    releases = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        package = response.get_json()
        assert_valid(package)
        releases += package["releases"]
        url = package.get("links", {}).get("next")
    return releases


def by_id(items):
    return {item["id"]: item for item in items}


def test_a_co_funded_invoiced_and_paid_call_off(app, client):
    world, call_off, invoice = paid_co_funded_call_off()
    ocid = call_off_ocid(call_off.reference)
    response = client.get(f"/api/v1/ocds/records/{ocid}")
    assert response.status_code == 200
    package = response.get_json()
    assert_valid(package)
    assert (
        package["version"] == "1.1" and package["publisher"]["name"] == app.config["SERVICE_NAME"]
    )
    [record] = package["records"]
    releases = record["releases"]
    assert [r["id"] for r in releases] == [
        f"{ocid}-award",
        f"{ocid}-accepted",
        f"{ocid}-payment-{invoice.id}",
    ]
    assert [r["tag"] for r in releases] == [
        ["award", "contract"],
        ["awardUpdate", "contractUpdate"],
        ["implementation"],
    ]
    award, accepted, payment = releases
    assert award["date"] <= accepted["date"] < payment["date"]
    assert {r["initiationType"] for r in releases} == {"tender"}
    # A non-competitive award under the dynamic market.
    assert award["tender"]["procurementMethod"] == "limited"
    assert award["tender"]["competitive"] is False
    assert award["relatedProcesses"] == [
        {
            "id": "framework",
            "relationship": ["framework"],
            "title": "The dynamic market this call-off is made under",
            "scheme": "ocid",
            "identifier": dynamic_market_ocid(),
        }
    ]
    assert award["awards"][0]["status"] == "pending"
    assert award["contracts"][0]["status"] == "pending"
    assert accepted["contracts"][0]["status"] == "active"
    # Money: pounds, exact.
    contract = payment["contracts"][0]
    assert contract["value"] == {
        "amount": call_off.net_pence / 100,
        "amountGross": call_off.gross_pence / 100,
        "currency": "GBP",
    }
    [item] = contract["items"]
    assert item["quantity"] == call_off.quantity
    assert item["unit"] == {
        "name": "session",
        "value": {"amount": 123.45, "currency": "GBP"},
    }
    [transaction] = contract["implementation"]["transactions"]
    assert transaction["value"] == {"amount": invoice.gross_pence / 100, "currency": "GBP"}
    assert transaction["payer"]["id"] == f"org-{world.region.id}"
    assert transaction["payee"]["id"] == f"org-{world.provider.id}"
    # Funders and their shares; the buyer pays; the supplier is paid.
    parties = by_id(payment["parties"])
    region, pcc = parties[f"org-{world.region.id}"], parties[f"org-{world.pcc.id}"]
    assert region["roles"] == ["buyer", "funder", "payer"]
    assert pcc["roles"] == ["funder"]
    shares = {f.organisation_id: f.share_pence for f in call_off.funders}
    assert pcc["roleDetails"] == f"Funder: 40.00% of the value (£{shares[world.pcc.id] / 100:,.2f})"
    assert region["roleDetails"].startswith("Funder: 60.00% of the value")
    assert payment["buyer"] == {"id": f"org-{world.region.id}", "name": world.region.name}
    # Scale and VCSE as classified on each release's day (reclassified before payment).
    for release, expected in ((award, ("sme", True)), (payment, ("large", False))):
        supplier = by_id(release["parties"])[f"org-{world.provider.id}"]
        assert (supplier["details"]["scale"], supplier["details"]["vcse"]) == expected
        in_force = classifications_in_force([world.provider.id], london_day(release["date"]))
        assert in_force[world.provider.id].vcse is expected[1]
    assert "details" not in region  # a commissioner has no classification
    compiled = record["compiledRelease"]
    assert compiled["tag"] == ["compiled"]
    assert compiled["contracts"][0]["implementation"] == contract["implementation"]
    assert compiled["contracts"][0]["status"] == "active"


def test_an_awarded_further_competition_and_its_call_off(app, client):
    world, competition, bids = awarded_competition()
    ocid = competition_ocid(competition.reference)
    package = client.get(f"/api/v1/ocds/records/{ocid}").get_json()
    assert_valid(package)
    releases = package["records"][0]["releases"]
    assert [r["id"].removeprefix(f"{ocid}-") for r in releases] == ["tender", "closed", "award"]
    tender, closed, awarded = releases
    assert tender["tag"] == ["tender"] and tender["tender"]["status"] == "active"
    assert "bids" not in tender and "numberOfTenderers" not in tender["tender"]
    assert tender["tender"]["lots"] == [{"id": "ACC", "title": "Accommodation", "status": "active"}]
    assert tender["tender"]["minValue"]["amount"] < competition.estimated_value_pence / 100
    assert tender["tender"]["value"]["amount"] >= competition.estimated_value_pence / 100
    assert closed["tender"]["numberOfTenderers"] == 3
    statistics = {s["measure"]: s["value"] for s in closed["bids"]["statistics"]}
    # Providers 1-3 are a VCSE SME, a private SME and a large public body.
    assert statistics == {"finalStageBids": 3, "smeFinalStageBids": 2, "vcseFinalStageBids": 1}
    assert awarded["tag"] == ["award", "contract"]
    assert awarded["tender"]["status"] == "complete"
    [award] = awarded["awards"]
    winner = bids[0].organisation
    assert award["suppliers"] == [{"id": f"org-{winner.id}", "name": winner.name}]
    assert award["standstillPeriod"]["endDate"] > award["standstillPeriod"]["startDate"]
    call_off = competition.call_off
    assert award["value"]["amount"] == call_off.net_pence / 100
    assert awarded["contracts"][0]["awardID"] == award["id"]
    supplier = by_id(awarded["parties"])[f"org-{winner.id}"]
    assert supplier["details"] == {"scale": "sme", "vcse": True}
    # The call-off relates to the dynamic market as its framework and to its competition.
    record = client.get(f"/api/v1/ocds/records/{call_off_ocid(call_off.reference)}").get_json()
    assert_valid(record)
    related = by_id(record["records"][0]["compiledRelease"]["relatedProcesses"])
    assert related["framework"]["identifier"] == dynamic_market_ocid()
    assert related["competition"]["identifier"] == ocid
    assert record["records"][0]["releases"][0]["tender"]["procurementMethod"] == "selective"
    # The dynamic market: a DPS open to other buyers, a lot per category, an admission each.
    market = client.get(f"/api/v1/ocds/records/{dynamic_market_ocid()}").get_json()
    assert_valid(market)
    dps = market["records"][0]["compiledRelease"]
    techniques = dps["tender"]["techniques"]
    assert techniques["hasDynamicPurchasingSystem"] is True
    assert techniques["dynamicPurchasingSystem"] == {"type": "open", "status": "active"}
    assert [lot["id"] for lot in dps["tender"]["lots"]] == ["ACC"]
    admitted = {a["suppliers"][0]["id"] for a in dps["awards"]}
    assert admitted == {f"org-{p.id}" for p in [*world.providers, world.outsider]}
    # The whole feed, page by page, validates too.
    assert len(every_release(client)) == len(releases) + len(
        record["records"][0]["releases"]
    ) + len(market["records"][0]["releases"])


def test_a_draft_competition_is_never_published(app, client):
    from tests.competitions.factories import build_competition_world

    world = build_competition_world()
    assert world.competition.published_at is None
    releases = client.get("/api/v1/ocds/releases?limit=1000").get_json()["releases"]
    assert not [r for r in releases if "FC-" in r["ocid"] or r["ocid"].endswith("None")]
    if world.competition.reference:
        ocid = competition_ocid(world.competition.reference)
        assert client.get(f"/api/v1/ocds/records/{ocid}").status_code == 404
