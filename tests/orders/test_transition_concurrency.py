"""Every call-off transition happens once however many clients ask for it at the same moment:
one succeeds, every other is refused with a 409 saying it has already been done, and capacity,
budgets, audit events and emails show one transition.

Two clients run on every backend (SQLite too); twenty run on PostgreSQL, as real parallel
clients with connections of their own.
"""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.catalogue.models import CapacityCommitment
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.errors import TransitionConflict
from marketplace.core.notifications.models import Notification
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import call_offs, placing, responses
from marketplace.orders.services import capacity as order_capacity
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import variations as order_variations
from tests.conftest import sign_in_as
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, shares
from tests.orders.test_call_off_api import bearer
from tests.racing import OK, elsewhere, one_wins, race, racing_app

CLIENTS = 20
several = pytest.mark.parametrize(
    "clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)]
)


def audited(action: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


def emailed(template: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.template == template)
    )


def capacity_rows(listing_id: int) -> list[tuple]:
    return db.session.execute(
        sa.select(CapacityCommitment.month, CapacityCommitment.units, CapacityCommitment.source)
        .where(CapacityCommitment.listing_id == listing_id)
        .order_by(CapacityCommitment.month)
    ).all()


def acting(user_id: int, call_off_id: int, act):
    """A client that reads the person and the call-off (with its funders, as the pages do),
    then acts with ``act(person, call_off)``."""

    def client():
        actor = db.session.get(User, user_id)
        call_off = db.session.get(CallOff, call_off_id)
        list(call_off.funders)
        return lambda: act(actor, call_off)

    return client


def placed(world, **fields) -> CallOff:
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, **fields)
    )
    commit()
    return call_off


@several
def test_acceptances_at_once_accept_once(app, clients):
    world = build_orders_world(price_pence=1_000, monthly_capacity=100)
    call_off = placed(world, quantity=30)
    plan = order_capacity.capacity_plan(call_off)
    admins = [world.provider_admin.id] + [
        make_member(Role.PROVIDER_ADMIN, world.provider).id for _ in range(clients - 1)
    ]
    commit()

    outcomes = race(app, [acting(admin, call_off.id, responses.accept) for admin in admins])

    one_wins(outcomes, "409: This call-off has already been accepted")
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.ACCEPTED
    # One set of capacity commitments: the call-off's units once, month by month.
    assert capacity_rows(world.listing.id) == [
        (month, units, call_off.reference) for month, units in sorted(plan.items())
    ]
    assert audited("call_off.accepted") == 1
    assert emailed("orders_accepted") == 1


def test_capacity_left_by_a_refused_second_acceptance_takes_a_valid_call_off(app):
    # The phantom capacity of a double acceptance refused the next call-off that fitted.
    world = build_orders_world(price_pence=1_000, monthly_capacity=20)
    start = world.start
    first = placed(world, quantity=10, start_date=start, end_date=start)
    second = placed(world, quantity=10, start_date=start, end_date=start, po_number="PO-2")
    other_admin = make_member(Role.PROVIDER_ADMIN, world.provider).id
    commit()

    outcomes = race(
        app,
        [
            acting(world.provider_admin.id, first.id, responses.accept),
            acting(other_admin, first.id, responses.accept),
        ],
    )
    one_wins(outcomes, "409: This call-off has already been accepted")
    responses.accept(world.provider_admin, db.session.get(CallOff, second.id))
    commit()
    assert sum(units for _, units, _ in capacity_rows(world.listing.id)) == 20


@several
def test_declines_at_once_decline_once_and_release_the_budget_once(app, clients):
    world = build_orders_world(price_pence=1_000)
    call_off = placed(world, quantity=30)
    assert world.budget.committed_pence == 30_000
    admins = [world.provider_admin.id] + [
        make_member(Role.PROVIDER_ADMIN, world.provider).id for _ in range(clients - 1)
    ]
    commit()

    outcomes = race(
        app,
        [
            acting(admin, call_off.id, lambda a, c: responses.decline(a, c, "No places left"))
            for admin in admins
        ],
    )

    one_wins(outcomes, "409: This call-off has already been declined")
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.DECLINED
    budget = db.session.get(Budget, world.budget.id)
    assert (budget.committed_pence, budget.spent_pence) == (0, 0)  # released once, not twice
    assert audited("call_off.declined") == 1
    assert emailed("orders_declined") == 1


@several
def test_approvals_at_once_approve_once(app, monkeypatch, clients):
    world = build_orders_world(price_pence=100_000)
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 500_000)
    call_off = placed(world, quantity=6)  # £6,000: above the buyer's limit
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL
    approvers = [world.approver.id] + [
        make_member(Role.APPROVER, world.region).id for _ in range(clients - 1)
    ]
    commit()

    outcomes = race(app, [acting(a, call_off.id, order_funding.approve) for a in approvers])

    one_wins(outcomes, "409: This call-off has already been approved")
    db.session.expire_all()
    approved = db.session.get(CallOff, call_off.id)
    assert approved.status == CallOffStatus.SENT and approved.approved_by_id in approvers
    assert db.session.get(Budget, world.budget.id).committed_pence == 600_000
    assert audited("call_off.approved") == 1
    assert emailed("orders_approved") == 1
    assert emailed("orders_sent_to_provider") == 1


@several
def test_a_co_funders_confirmations_at_once_confirm_once(app, clients):
    world = build_orders_world(price_pence=10_000)
    call_off = placed(world, quantity=4, shares=shares((world.region, 5_000), (world.pcc, 5_000)))
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    approvers = [world.pcc_approver.id] + [
        make_member(Role.APPROVER, world.pcc).id for _ in range(clients - 1)
    ]
    pcc_id = world.pcc.id
    commit()

    def confirming(user_id: int):
        return acting(
            user_id,
            call_off.id,
            lambda actor, c: order_funding.confirm_funding(
                actor, c, db.session.get(Organisation, pcc_id)
            ),
        )

    outcomes = race(app, [confirming(a) for a in approvers])

    one_wins(outcomes, "409: Your organisation has already confirmed its share")
    db.session.expire_all()
    confirmed = db.session.get(CallOff, call_off.id)
    assert confirmed.status == CallOffStatus.SENT
    assert [f.confirmed_by_id in approvers for f in confirmed.funders] == [False, True]
    assert db.session.get(Budget, world.pcc_budget.id).committed_pence == 20_000
    assert db.session.get(Budget, world.budget.id).committed_pence == 20_000
    assert audited("call_off.funding_confirmed") == 1
    assert emailed("orders_sent_to_provider") == 1
    assert emailed("orders_funding_confirmed") == 1  # the lead buyer told once


def test_two_co_funders_confirming_at_once_both_count_and_the_call_off_moves_on(app):
    # Each used to see the other's share unconfirmed: both confirmed, and the call-off waited
    # for funding for ever.
    world = build_orders_world(price_pence=10_000)
    other = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    db.session.add(
        Budget(
            organisation=other, financial_year=world.budget.financial_year, allocated_pence=10**7
        )
    )
    other_approver = make_member(Role.APPROVER, other)
    call_off = placed(
        world,
        quantity=3,
        shares=shares((world.region, 4_000), (world.pcc, 3_000), (other, 3_000)),
    )
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    organisations = {world.pcc_approver.id: world.pcc.id, other_approver.id: other.id}
    commit()

    def confirming(user_id: int, organisation_id: int):
        return acting(
            user_id,
            call_off.id,
            lambda actor, c: order_funding.confirm_funding(
                actor, c, db.session.get(Organisation, organisation_id)
            ),
        )

    outcomes = race(app, [confirming(u, o) for u, o in organisations.items()])

    assert outcomes == [OK, OK]
    db.session.expire_all()
    moved_on = db.session.get(CallOff, call_off.id)
    assert all(f.confirmed_at is not None for f in moved_on.funders)
    assert moved_on.status == CallOffStatus.SENT
    assert audited("call_off.funding_confirmed") == 2
    assert emailed("orders_sent_to_provider") == 1
    assert emailed("orders_funding_confirmed") == 2  # once for each co-funder


@pytest.mark.postgres_only
def test_twenty_acceptances_through_the_api_answer_one_200_and_409s(app, monkeypatch):
    world = build_orders_world(price_pence=1_000)
    call_off = placed(world, quantity=10)
    plan = order_capacity.capacity_plan(call_off)
    tokens = [bearer(world.provider_admin, world.provider)] + [
        bearer(make_member(Role.PROVIDER_ADMIN, world.provider), world.provider)
        for _ in range(CLIENTS - 1)
    ]
    commit()
    answers = http_race(
        app,
        monkeypatch,
        [(f"/api/v1/orders/{call_off.id}/accept", {"headers": headers}) for headers in tokens],
    )

    assert sorted(status for status, _ in answers) == [200] + [409] * (CLIENTS - 1)
    refusals = [body for status, body in answers if status == 409]
    assert {(r["status"], r["detail"]) for r in refusals} == {
        (409, "This call-off has already been accepted")
    }
    db.session.expire_all()
    assert len(capacity_rows(world.listing.id)) == len(plan)
    assert audited("call_off.accepted") == 1
    assert emailed("orders_accepted") == 1


def http_race(app, monkeypatch, requests: list[tuple[str, dict]]) -> list[tuple[int, object]]:
    """POST each request at once, from a client of its own; (status, JSON or page text) each.

    Every request has read the call-off (to check who may act) before any of them goes on to
    act on it: the provider's permission check, which comes after that read, waits for all.
    """
    barrier = threading.Barrier(len(requests))
    require_provider = call_offs.require_provider

    def waiting(*args, **kwargs):
        require_provider(*args, **kwargs)
        barrier.wait(timeout=60)

    # Where the provider's use cases look it up: their answer, and delivery and completion.
    monkeypatch.setattr(responses, "require_provider", waiting)
    monkeypatch.setattr(order_delivery, "require_provider", waiting)
    answers: list[tuple[int, object]] = []
    lock = threading.Lock()
    with racing_app(app, len(requests)) as racing:

        def send(url: str, options: dict) -> None:
            client = options.pop("client", None) or racing.test_client()
            try:
                response = client.post(url, **options)
                if response.is_json:
                    answer = (response.status_code, response.get_json())
                elif response.status_code == 302:
                    page = client.get(response.headers["Location"])
                    answer = (302, page.get_data(as_text=True))
                else:
                    answer = (response.status_code, response.get_data(as_text=True))
            except Exception as error:  # recorded, then asserted below
                barrier.abort()
                answer = (0, repr(error))
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=send, args=request) for request in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    assert len(answers) == len(requests), "a request did not finish"
    assert not [a for a in answers if a[0] in (0, 500)], answers
    return answers


def test_a_double_click_on_accept_accepts_once_and_says_so_on_the_call_off_page(app, monkeypatch):
    world = build_orders_world(price_pence=1_000)
    call_off = placed(world, quantity=10)
    plan = order_capacity.capacity_plan(call_off)
    commit()
    url = f"/call-offs/{call_off.id}/accept"

    def signed_in():
        client = app.test_client()
        sign_in_as(client, world.provider_admin, world.provider)
        return client

    # Two clicks of the same person (two clients: their flashed messages are their own).
    answers = http_race(app, monkeypatch, [(url, {"client": signed_in()}) for _ in range(2)])

    pages = [page for _, page in answers]
    assert [status for status, _ in answers] == [302, 302]
    said = sorted(notice(page) for page in pages)
    assert said == [
        "Call-off accepted. The buyer has been told.",
        "This call-off has already been accepted",
    ]
    assert all(call_off.reference in page for page in pages)  # both on the call-off's page
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.ACCEPTED
    assert len(capacity_rows(world.listing.id)) == len(plan)
    assert audited("call_off.accepted") == 1
    assert emailed("orders_accepted") == 1


def notice(page: str) -> str:
    """The text of the page's notification banner."""
    banner = page.split('class="govuk-notification-banner__content">', 1)[1].split("</div>")[0]
    return " ".join(re.sub(r"<[^>]+>", " ", banner).split())


# --- variations


def proposed(world, quantity=10) -> tuple[CallOff, int]:
    """An accepted call-off and a variation the provider proposed: five more units."""
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=quantity)
    )
    responses.accept(world.provider_admin, call_off)
    variation = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=5, reason="Needs more support"
    )
    commit()
    return call_off, variation.id


def test_a_variation_agreed_twice_at_once_is_agreed_once(app):
    world = build_orders_world(price_pence=1_000)
    call_off, variation_id = proposed(world)
    call_off_id = call_off.id
    plan_units = 15

    def agreeing(actor, call_off):
        order_variations.agree_variation(actor, call_off, variation_id)

    outcomes = race(
        app,
        [
            acting(world.buyer.id, call_off_id, agreeing),
            acting(world.approver.id, call_off_id, agreeing),
        ],
    )

    one_wins(outcomes, "409: This variation has already been agreed")
    db.session.expire_all()
    varied = db.session.get(CallOff, call_off_id)
    assert (varied.quantity, varied.version, varied.gross_pence) == (15, 2, 15_000)
    assert db.session.get(Budget, world.budget.id).committed_pence == 15_000
    assert sum(units for _, units, _ in capacity_rows(world.listing.id)) == plan_units
    assert audited("call_off.variation_agreed") == 1
    assert emailed("orders_variation_decided") == 1


def test_a_variation_agreed_from_a_page_read_before_it_was_withdrawn_is_refused(app):
    world = build_orders_world(price_pence=1_000)
    call_off, variation_id = proposed(world)
    call_off = db.session.get(CallOff, call_off.id)
    [variation] = call_off.variations
    admin_id = world.provider_admin.id

    def withdraw():
        order_variations.withdraw_variation(
            db.session.get(User, admin_id), db.session.get(CallOff, call_off.id), variation_id
        )

    elsewhere(app, withdraw)
    assert variation.status.value == "proposed"  # as the buyer's page showed it

    with pytest.raises(TransitionConflict) as refused:
        order_variations.agree_variation(world.buyer, call_off, variation_id)
    assert refused.value.errors == {
        "status": ["This variation is withdrawn, so it cannot be agreed"]
    }
    db.session.rollback()
    kept = db.session.get(CallOff, call_off.id)
    assert (kept.quantity, kept.version) == (10, 1)
    assert db.session.get(Budget, world.budget.id).committed_pence == 10_000
    assert audited("call_off.variation_agreed") == 0


@several
def test_a_cancellation_and_an_agreement_at_once_decide_the_change_once(app, clients):
    """Cancelling closes a change still waiting (withdrawn); agreeing it at the same moment
    either comes first (agreed, then the call-off is cancelled on its new terms) or is refused
    with a 409: the change is decided once, never both agreed and withdrawn."""
    world = build_orders_world(price_pence=1_000)
    call_off, variation_id = proposed(world)
    call_off_id = call_off.id

    def agreeing(actor, call_off):
        order_variations.agree_variation(actor, call_off, variation_id)

    def cancelling(actor, call_off):
        responses.cancel(actor, call_off, "duplicate")

    agreers = [acting(world.buyer.id, call_off_id, agreeing) for _ in range(clients - 1)]
    outcomes = race(app, [acting(world.buyer.id, call_off_id, cancelling), *agreers])

    db.session.expire_all()
    ended = db.session.get(CallOff, call_off_id)
    [variation] = ended.variations
    assert ended.status == CallOffStatus.CANCELLED
    agreed, withdrawn = (
        audited("call_off.variation_agreed"),
        audited("call_off.variation_withdrawn"),
    )
    assert (agreed, withdrawn) in ((1, 0), (0, 1)), (agreed, withdrawn, outcomes)
    if agreed:
        assert variation.status.value == "agreed" and ended.version == 2
    else:
        assert variation.status.value == "withdrawn" and ended.version == 1
    assert outcomes.count(OK) == 1 + agreed, outcomes
    assert all(o == OK or o.startswith("409: ") for o in outcomes), outcomes
    assert db.session.get(Budget, world.budget.id).committed_pence == 0  # all released


def test_two_proposals_at_once_leave_one_waiting(app):
    world = build_orders_world(price_pence=1_000)
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=10)
    )
    responses.accept(world.provider_admin, call_off)
    commit()

    def proposing(actor, call_off):
        order_variations.propose_variation(actor, call_off, extra_units=2, reason="Two more")

    outcomes = race(
        app,
        [
            acting(world.buyer.id, call_off.id, proposing),
            acting(world.provider_admin.id, call_off.id, proposing),
        ],
    )

    one_wins(
        outcomes,
        "409: A variation is already waiting for a decision: decide or withdraw it first",
    )
    db.session.expire_all()
    assert len(db.session.get(CallOff, call_off.id).variations) == 1
    assert audited("call_off.variation_proposed") == 1


def test_a_decline_sent_after_the_call_off_was_accepted_goes_back_to_its_page(client, app):
    # The decline form was opened before a colleague accepted the call-off: the form can no
    # longer do anything, so the person is taken to the call-off, which says why.
    world = build_orders_world(price_pence=1_000)
    call_off = placed(world, quantity=10)
    responses.accept(world.provider_admin, call_off)
    commit()
    sign_in_as(client, world.provider_admin, world.provider)

    response = client.post(f"/call-offs/{call_off.id}/decline", data={"reason": "No places"})

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/call-offs/{call_off.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert notice(page) == "This call-off is accepted, so it cannot be declined"
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.ACCEPTED
    assert audited("call_off.declined") == 0


@several
def test_a_change_approved_by_several_approvers_at_once_is_approved_and_made_once(
    app, monkeypatch, clients
):
    world = build_orders_world(price_pence=100_000)
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 500_000)
    call_off = placed(world, quantity=4)
    responses.accept(world.provider_admin, call_off)
    change = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=2, reason="x"
    )
    order_variations.agree_variation(world.buyer, call_off, change.id)  # £6,000: waits for approval
    assert change.awaiting_approval
    approvers = [world.approver.id] + [
        make_member(Role.APPROVER, world.region).id for _ in range(clients - 1)
    ]
    call_off_id, change_id = call_off.id, change.id
    commit()

    def approving(actor, call_off):
        order_variations.approve_variation(actor, call_off, change_id)

    outcomes = race(app, [acting(a, call_off_id, approving) for a in approvers])

    one_wins(outcomes, "409: This change has already been approved")
    db.session.expire_all()
    varied = db.session.get(CallOff, call_off_id)
    assert (varied.quantity, varied.version, varied.gross_pence) == (6, 2, 600_000)
    assert db.session.get(Budget, world.budget.id).committed_pence == 600_000
    assert audited("call_off.variation_approved") == 1
    assert audited("call_off.variation_agreed") == 1
