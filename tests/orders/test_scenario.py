"""Issue 5, acceptance 1: a probation region and a PCC co-fund a call-off 60/40; the PCC confirms
its share; an approver approves; the provider accepts; delivery is recorded; a variation adds
units; completion releases what is unspent. Each budget moves by exactly the right pence, and
every step sends the right emails and writes its audit event."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.notifications.models import Notification
from marketplace.orders.models import CallOffStatus
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import funding, placing, responses, variations
from marketplace.orders.services.delivery import DeliveryDetails, OutcomeDetails
from tests.orders.factories import build_orders_world, details, shares


def new_emails(seen: set[int]) -> list[tuple[str, str]]:
    rows = db.session.scalars(sa.select(Notification).order_by(Notification.id)).all()
    fresh = [(n.to_email, n.template) for n in rows if n.id not in seen]
    seen.update(n.id for n in rows)
    return fresh


def last_action() -> str:
    return db.session.scalar(sa.select(AuditEvent.action).order_by(AuditEvent.id.desc()).limit(1))


def test_a_co_funded_call_off_from_placing_to_completion(app, monkeypatch):
    # £123.45 a session plus 20% VAT: shares and spending that do not divide evenly.
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    monkeypatch.setitem(
        app.config, "BUYER_SPEND_LIMIT_PENCE", 50_000
    )  # £500: the lead share needs approval
    region_budget, pcc_budget = world.budget, world.pcc_budget
    seen: set[int] = set()

    # Placing: 10 sessions = £1,234.50 + £246.90 VAT = £1,481.40, split 60/40 to the penny.
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, quantity=10, shares=shares((world.region, 6_000), (world.pcc, 4_000))),
    )
    assert call_off.gross_pence == 148_140
    assert [f.share_pence for f in call_off.funders] == [88_884, 59_256]
    assert (region_budget.committed_pence, pcc_budget.committed_pence) == (88_884, 59_256)
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    assert new_emails(seen) == [(world.pcc_approver.email, "orders_funding_requested")]
    assert last_action() == "call_off.placed"

    # The PCC confirms its share; the lead buyer's share is over the buyer's limit.
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL
    assert sorted(new_emails(seen)) == sorted(
        [
            (world.approver.email, "orders_approval_requested"),
            (world.buyer.email, "orders_funding_confirmed"),
        ]
    )
    assert last_action() == "call_off.funding_confirmed"

    funding.approve(world.approver, call_off)
    assert call_off.status == CallOffStatus.SENT
    assert sorted(new_emails(seen)) == sorted(
        [
            (world.provider_admin.email, "orders_sent_to_provider"),
            (world.buyer.email, "orders_approved"),
        ]
    )
    assert last_action() == "call_off.approved"

    responses.accept(world.provider_admin, call_off)
    assert call_off.status == CallOffStatus.ACCEPTED
    assert new_emails(seen) == [(world.buyer.email, "orders_accepted")]
    assert last_action() == "call_off.accepted"

    # Delivery: 3 sessions = £370.35 + £74.07 VAT = £444.42 spent, 60/40.
    later = utcnow() + timedelta(days=40)
    order_delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(
            delivered_on=call_off.start_date, units=3, attendance="attended", progress_note="Good"
        ),
        now=later,
    )
    assert call_off.status == CallOffStatus.IN_DELIVERY
    assert (region_budget.spent_pence, pcc_budget.spent_pence) == (26_665, 17_777)
    assert (region_budget.committed_pence, pcc_budget.committed_pence) == (
        88_884 - 26_665,
        59_256 - 17_777,
    )
    assert last_action() == "call_off.delivery_recorded"

    # A variation adds 2 sessions: 12 × £123.45 = £1,481.40 + £296.28 = £1,777.68.
    variation = variations.propose_variation(
        world.buyer, call_off, extra_units=2, reason="Two more sessions to finish the plan"
    )
    # The region's share goes from £888.84 to £1,066.61, above the buyer's £500 limit: an
    # approver approves the change before the provider is asked.
    assert variation.awaiting_approval
    assert new_emails(seen) == [(world.approver.email, "orders_variation_approval_requested")]
    variations.approve_variation(world.approver, call_off, variation.id, now=later)
    assert new_emails(seen) == [(world.provider_admin.email, "orders_variation_proposed")]
    variations.agree_variation(world.provider_admin, call_off, variation.id, now=later)
    assert (call_off.quantity, call_off.gross_pence, call_off.version) == (12, 177_768, 2)
    assert [f.share_pence for f in call_off.funders] == [106_661, 71_107]
    assert new_emails(seen) == [(world.buyer.email, "orders_variation_decided")]
    assert last_action() == "call_off.variation_agreed"

    # Four more sessions, then completion: 7 of 12 delivered, the rest released.
    order_delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=call_off.start_date, units=4, attendance="late"),
        now=later,
    )
    order_delivery.complete(
        world.provider_admin,
        call_off,
        "Moved into settled accommodation",
        [OutcomeDetails("Settled accommodation", "achieved")],
        now=later,
    )
    assert call_off.status == CallOffStatus.COMPLETED
    # 7 sessions = £864.15 + £172.83 VAT = £1,036.98, split 60/40.
    assert region_budget.spent_pence + pcc_budget.spent_pence == 103_698
    assert (region_budget.spent_pence, pcc_budget.spent_pence) == (62_219, 41_479)
    assert (region_budget.committed_pence, pcc_budget.committed_pence) == (0, 0)
    # The buyer is told; the provider's administrator is told a draft invoice for the 7 sessions
    # not yet billed is ready to issue.
    assert new_emails(seen) == [
        (world.buyer.email, "orders_completed"),
        (world.provider_admin.email, "invoices_drafted_on_completion"),
    ]
    assert last_action() == "invoice.drafted"
    # The completion invoice bills exactly what was spent: the same £1,036.98.
    from marketplace.invoices.models import Invoice, InvoiceKind

    [invoice] = db.session.scalars(sa.select(Invoice).where(Invoice.call_off_id == call_off.id))
    assert (invoice.kind, invoice.gross_pence) == (InvoiceKind.COMPLETION, 103_698)
    actions = db.session.scalars(
        sa.select(AuditEvent.action)
        .where(AuditEvent.object_type == "call_off", AuditEvent.object_id == str(call_off.id))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "call_off.placed",
        "call_off.funding_confirmed",
        "call_off.approved",
        "call_off.accepted",
        "call_off.delivery_recorded",
        "call_off.variation_proposed",
        "call_off.variation_approval_requested",
        "call_off.variation_approved",
        "call_off.variation_agreed",
        "call_off.delivery_recorded",
        "call_off.completed",
    ]
