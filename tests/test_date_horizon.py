"""Every date the service takes is checked against one horizon (marketplace.core.validation): from
2000 on, and no more than five years after today (an end date: after its start). A date outside
it is refused with a message naming the field, on every path (pages, API, services, commands);
nothing is written; and old data with such a date answers with a message, never a 500."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accreditation.models import LegalRegime
from marketplace.accreditation.services import applications as app_services
from marketplace.accreditation.services import memberships as membership_services
from marketplace.accreditation.services.arrangements import create_arrangement
from marketplace.catalogue import rate_cards
from marketplace.catalogue.services.prices import preview_uplift, set_price
from marketplace.core import clock
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON, BusinessRuleViolation
from marketplace.core.validation import add_years, date_horizon_error
from marketplace.invoices import queries as invoice_queries
from marketplace.invoices.services import monthly_run
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import delivery, placing, responses, variations
from tests.accreditation.builders import make_authority, make_evidence, make_provider, make_world
from tests.accreditation.test_expiry import admitted
from tests.orders.factories import build_orders_world, details
from tests.orders.test_call_off_api import bearer, order
from tests.test_schemathesis import SPEC

FAR = "9999-12-31"
EARLY = "1999-12-31"


def calls_offs() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))


# ---------------------------------------------------------------------------------------------
# The helper


def test_the_horizon_runs_from_2000_to_five_years_ahead_or_after_the_start(app):
    today = date(2026, 12, 7)
    assert date_horizon_error(date(2000, 1, 1), "The date", today=today) is None
    assert date_horizon_error(date(2031, 12, 7), "The date", today=today) is None
    assert "2000 or later" in date_horizon_error(date(1999, 12, 31), "The date", today=today)
    late = date_horizon_error(date(2031, 12, 8), "The date", today=today)
    assert late == "The date must be no more than 5 years from today (on or before 7 December 2031)"
    start = date(2030, 1, 1)
    assert date_horizon_error(date(2034, 12, 31), "The end", start=start, today=today) is None
    assert "5 years after the start date" in date_horizon_error(
        date(2035, 1, 2), "The end", start=start, today=today
    )
    assert date_horizon_error(None, "The date") is None  # a missing date is another message
    assert add_years(date(2028, 2, 29), 5) == date(2033, 2, 28)
    assert add_years(date(9999, 1, 1), 5) == date.max


def test_the_horizon_comes_from_the_configuration(app):
    app.config["DATE_HORIZON_YEARS"] = 10
    try:
        assert date_horizon_error(date(2035, 1, 1), "The date", today=date(2026, 1, 1)) is None
    finally:
        app.config["DATE_HORIZON_YEARS"] = 5


# ---------------------------------------------------------------------------------------------
# Call-offs: the reported 500


@pytest.fixture
def world(app):
    return build_orders_world()


def test_a_call_off_ending_in_9999_is_refused_by_the_api_and_nothing_is_placed(client, world):
    buyer = bearer(world.buyer, world.region)
    response = client.post("/api/v1/orders", json=order(world, end_date=FAR), headers=buyer)
    assert response.status_code == 422 and response.mimetype == PROBLEM_JSON
    assert "no more than 5 years after the latest start" in response.json["errors"]["end_date"][0]
    response = client.post("/api/v1/orders", json=order(world, start_date=EARLY), headers=buyer)
    assert response.status_code == 422
    assert "2000 or later" in response.json["errors"]["start_date"][0]
    assert calls_offs() == 0


def test_the_service_refuses_an_end_more_than_five_years_after_the_start(world):
    too_late = add_years(world.start, 5) + timedelta(days=1)
    with pytest.raises(BusinessRuleViolation) as refused:
        placing.place_call_off(
            world.buyer, world.region, world.listing.id, details(world, end_date=too_late)
        )
    assert list(refused.value.errors) == ["end_date"]
    assert "no more than 5 years after the start date" in refused.value.errors["end_date"][0]
    # Five years commit to the budget of each year its planned units fall in: every year has one.
    first = clock.financial_year(world.start)
    db.session.add_all(
        Budget(organisation=world.region, financial_year=year, allocated_pence=10_000_000)
        for year in range(first + 1, first + 6)
    )
    ok = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, end_date=add_years(world.start, 5)),
    )
    assert ok.end_date == add_years(world.start, 5)


def test_the_question_page_shows_the_far_end_date_on_its_field(client, world, login):
    commit()
    login(world.buyer, world.region)
    response = client.post(
        f"/call-offs/new/{world.listing.id}",
        data={
            "quantity": "10",
            "start_date": world.start.isoformat(),
            "end_date": "31 12 9999",
            "crn": "X123456",
            "pdu": "Durham",
            "po_number": "PO-1",
            "choice_reason": "only_provider_in_area",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'href="#end_date"' in html
    assert "no more than 5 years after the start date" in html
    assert calls_offs() == 0


def test_a_call_off_already_ending_in_9999_is_refused_on_accept_with_a_message(
    client, world, login
):
    """Old data placed before dates were checked: accepting it answers 422, never a 500."""
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    commit()
    db.session.execute(
        sa.update(CallOff).where(CallOff.id == call_off.id).values(end_date=date(9999, 12, 31))
    )
    commit()
    provider = bearer(world.provider_admin, world.provider)
    response = client.post(f"/api/v1/orders/{call_off.id}/accept", headers=provider)
    assert response.status_code == 422 and response.mimetype == PROBLEM_JSON
    assert "its dates must be a mistake" in response.json["errors"]["end_date"][0]
    login(world.provider_admin, world.provider)
    page = client.post(f"/call-offs/{call_off.id}/accept", follow_redirects=True)
    assert page.status_code == 200
    assert "its dates must be a mistake" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.SENT


def test_deliveries_variations_and_outcome_dates_check_the_horizon(world):
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    responses.accept(world.provider_admin, call_off)
    with pytest.raises(BusinessRuleViolation) as refused:
        variations.propose_variation(
            world.buyer,
            call_off,
            new_end_date=add_years(call_off.start_date, 5) + timedelta(days=1),
            reason="Longer",
        )
    assert "after the call-off's start" in refused.value.errors["new_end_date"][0]
    with pytest.raises(BusinessRuleViolation) as refused:
        delivery.record_delivery(
            world.provider_admin,
            call_off,
            delivery.DeliveryDetails(delivered_on=date(1999, 1, 1), units=1, attendance="attended"),
        )
    assert "2000 or later" in refused.value.errors["delivered_on"][0]


# ---------------------------------------------------------------------------------------------
# Every date an API operation takes


def _date_fields(schema: dict, path: tuple = ()) -> list[tuple]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("format") == "date" and not schema.get("readOnly"):
        return [path]
    found = []
    for name, prop in schema.get("properties", {}).items():
        found += _date_fields(prop, (*path, name))
    if "items" in schema:
        found += _date_fields(schema["items"], (*path, 0))
    return found


def _nest(path: tuple, value: str):
    for key in reversed(path):
        value = [value] if key == 0 else {key: value}
    return value


def _merge(body: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            _merge(body[key], value)
        else:
            body[key] = value
    return body


def date_inputs() -> list[tuple[str, str, str, tuple]]:
    """(method, url, where, path) for every date an operation takes, in its body or query."""
    found = []
    for path, item in SPEC["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for media_type, body in operation.get("requestBody", {}).get("content", {}).items():
                found += [(method, url, media_type, p) for p in _date_fields(body["schema"])]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query" and (
                    parameter.get("schema", {}).get("format") == "date"
                ):
                    found.append((method, url, "query", (parameter["name"],)))
    return found


def test_every_date_an_api_operation_takes_is_checked_against_the_horizon(client, world):
    inputs = date_inputs()
    names = {path[-1] for _, _, _, path in inputs}
    assert {"start_date", "end_date", "delivered_on", "paid_on", "effective_from"} <= names
    headers = bearer(world.buyer, world.region)
    failures = []
    for method, url, where, path in inputs:
        for value in (FAR, EARLY):
            if where == "query":
                response = client.open(f"{url}?{path[0]}={value}", method=method, headers=headers)
            elif where == "application/json":
                response = client.open(url, method=method, json=_nest(path, value), headers=headers)
            else:
                response = client.open(url, method=method, data={path[0]: value}, headers=headers)
            errors = (response.json or {}).get("errors", {}) if response.is_json else {}
            for key in path:
                errors = errors.get(str(key), {}) if isinstance(errors, dict) else {}
            # The rate card's ?on= answers a bad date with 400 and says why in its detail.
            detail = (response.json or {}).get("detail", "") if response.is_json else ""
            said = "2000 or later" in detail or "5 years" in detail
            if not (response.status_code == 422 and errors or response.status_code == 400 and said):
                failures.append(
                    f"{method.upper()} {url} {where} {path}={value}: {response.status_code}"
                )
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# Prices, rate cards, invoices, payment performance, arrangements, evidence, the audit log


def test_price_and_uplift_dates_check_the_horizon(world):
    far = add_years(london_date(), 5) + timedelta(days=1)
    with pytest.raises(BusinessRuleViolation) as refused:
        set_price(world.provider_admin, world.listing, 12_000, far)
    assert "no more than 5 years from today" in refused.value.errors["effective_from"][0]
    with pytest.raises(BusinessRuleViolation) as refused:
        preview_uplift(world.provider_admin, world.provider, [world.listing.id], 500, far)
    assert "no more than 5 years from today" in refused.value.errors["effective_from"][0]


def test_a_rate_card_on_a_date_before_2000_is_refused(client, world):
    with pytest.raises(rate_cards.BadRateCardDate, match="2000 or later"):
        rate_cards.parse_on("1999-12-31")
    commit()
    response = client.get(f"/api/v1/providers/{world.provider.id}/rate-card?on=1999-12-31")
    assert response.status_code == 400 and "2000 or later" in response.json["detail"]


def test_invoice_periods_and_payment_dates_check_the_horizon(app, world):
    with pytest.raises(BusinessRuleViolation, match="The month must be no more than 5 years"):
        monthly_run.run_period("9999-01")
    result = app.test_cli_runner().invoke(args=["invoices", "run", "--period", "9999-01"])
    assert result.exit_code != 0 and "no more than 5 years" in result.output
    with pytest.raises(BusinessRuleViolation, match="2000 or later"):
        invoice_queries.parse_half_year("1999-H2", date(2026, 12, 7))
    with pytest.raises(BusinessRuleViolation, match="no more than 5 years"):
        invoice_queries.parse_half_year("9999-H1", date(2026, 12, 7))


def test_arrangement_dates_check_the_horizon(app):
    world = make_world()
    _, authority_admin = make_authority()
    common = dict(
        name="Long DPS",
        reference="DPS-LONG-1",
        legal_regime=LegalRegime.PCR2015_DPS,
        direct_award_limit_pence=3_000_000,
        region_ids=[world.region_1.id],
    )
    with pytest.raises(BusinessRuleViolation) as refused:
        create_arrangement(
            authority_admin, valid_from=date(2026, 4, 1), valid_to=date(2036, 3, 31), **common
        )
    assert "5 years after the start date" in refused.value.errors["valid_to"][0]
    with pytest.raises(BusinessRuleViolation) as refused:
        create_arrangement(
            authority_admin, valid_from=date(1999, 4, 1), valid_to=date(2003, 3, 31), **common
        )
    assert "2000 or later" in refused.value.errors["valid_from"][0]


def test_evidence_expiry_and_date_answers_check_the_horizon(app):
    world = make_world()
    organisation, admin = make_provider()
    application = app_services.start_application(admin, organisation, world.arrangement)
    app_services.choose_lots_and_areas(
        admin, application, [world.lot_a.id], [world.region_1.id], []
    )
    with pytest.raises(BusinessRuleViolation) as refused:
        app_services.answer(
            admin,
            application,
            world.insurance_a,
            file=make_evidence(organisation, admin),
            expires_on=date(9999, 12, 31),
        )
    [(field, [message])] = refused.value.errors.items()
    assert field.endswith("-expires") and "no more than 5 years from today" in message


def test_renewed_evidence_expiring_far_ahead_is_refused(app):
    _, organisation, admin, _, _, insurance = admitted(date(2027, 6, 30))
    with pytest.raises(BusinessRuleViolation) as refused:
        membership_services.renew_evidence(
            admin, insurance, make_evidence(organisation, admin), date(9999, 12, 31)
        )
    assert "no more than 5 years from today" in refused.value.errors["expires_on"][0]


# ---------------------------------------------------------------------------------------------
# The other reported 500s, each on an otherwise valid call-off


@pytest.mark.parametrize(
    "body, status, field",
    [
        # A NUL byte in a text field: PostgreSQL cannot store it (500 there before).
        (lambda world: json.dumps(order(world, po_number="PO-\u0000-1")), 422, "po_number"),
        # A lone surrogate, which JSON can carry and no database can encode (500 on both).
        (
            lambda world: json.dumps(order(world, notes_for_provider="SURROGATE")).replace(
                "SURROGATE", "\\ud800"
            ),
            422,
            "notes_for_provider",
        ),
        # JSON nested far deeper than any body needs (a RecursionError, 500 on both).
        (lambda world: '{"crn": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, None),
    ],
    ids=["nul", "lone-surrogate", "deep-json"],
)
def test_text_that_cannot_be_saved_and_deep_json_are_refused_not_a_500(
    client, world, body, status, field
):
    buyer = bearer(world.buyer, world.region)
    response = client.post(
        "/api/v1/orders",
        data=body(world),
        headers={**buyer, "Content-Type": "application/json"},
    )
    assert response.status_code == status and response.mimetype == PROBLEM_JSON
    if field:
        assert field in response.json["errors"]
    assert calls_offs() == 0
