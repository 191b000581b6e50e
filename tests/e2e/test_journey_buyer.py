"""Journeys of a commissioning organisation's people (JOURNEYS.md B1–B5, A1–A3, C1), from their
home page, by links, buttons and forms alone; axe-core checks every page (conftest.py).

A3 pays its second invoice by card, with the card entered in Stripe's own form: localstripe (its
test double of Stripe.js, and its API) stands in for Stripe."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from marketplace.core.clock import add_working_days
from tests.e2e import worlds
from tests.e2e.cards import ALWAYS_AUTHENTICATE, CARD_ELEMENT, pass_the_issuers_check, type_card
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def test_a3_the_approver_validates_an_invoice_pays_it_by_bacs_and_pays_another_by_card(
    journey, live_server, card_payments
):
    world = worlds.invoice_world(live_server, issued=True, second=True)
    approver, provider, number = world.people.approver, world.people.provider, world.number
    issued = live_server.smtp.wait_for(lambda m: m.to == approver.email and number in m.subject)
    assert f"Dear {approver.name}," in issued.body
    assert f"Amount due: {world.gross}" in issued.body

    journey.sign_in_from_home(approver.email, PASSWORD)
    journey.follow("Invoices", within="#service-navigation")
    row = journey.page.locator(f"tr:has-text('{number}')")
    assert "Issued" in row.inner_text() and world.gross in row.inner_text()
    journey.follow(number)
    assert journey.heading().startswith(f"Invoice {number}")
    main = journey.main_text()
    assert world.call_off in main and world.po_number in main and world.gross in main
    journey.press("Validate invoice")
    assert "Invoice validated" in journey.banner()
    validated = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject.startswith(f"Invoice {number} has been val")
    )
    assert world.people.buyer_name in validated.subject and world.gross in validated.body

    # The payment went out today; the first try leaves out the remittance reference and types
    # a date that does not exist.
    journey.follow("Record a BACS payment")
    assert journey.heading() == "Record a BACS payment"
    journey.fill("Date paid", "31 2 2026")
    journey.press("Record payment")
    journey.expect_errors(
        "Enter the remittance reference of the payment", "Date paid must be a real date"
    )
    today = worlds.london_today()
    journey.fill("Remittance reference", "NEP-REM-55810")
    journey.fill("Date paid", worlds.day_month_year(today))
    journey.press("Record payment")
    assert "Payment recorded" in journey.banner()
    assert "Paid" in journey.heading()
    assert "by BACS, reference NEP-REM-55810" in journey.main_text()
    paid = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject == f"Invoice {number} has been paid"
    )
    assert f"{world.gross} by BACS" in paid.body and "NEP-REM-55810" in paid.body

    # The list shows it paid.
    journey.follow("Invoices", within="#service-navigation")
    assert "Paid" in journey.page.locator(f"tr:has-text('{number}')").inner_text()

    # The other invoice, by card. The organisation has no card yet: the pay page says so and
    # leads to Stripe's card form. axe-core checks every page but the test double's card element.
    journey.axe_exclude = [CARD_ELEMENT]
    other, other_gross = world.second_number, world.second_gross
    journey.follow(other)
    journey.follow("Pay by card")
    assert journey.heading() == f"Pay invoice {other} by card"
    assert "No card saved" in journey.main_text()
    journey.follow("Add a payment card")
    assert journey.heading() == "Enter a payment card"
    # This card's issuer asks for 3-D Secure when it is saved and when it is charged.
    type_card(journey.page, ALWAYS_AUTHENTICATE)
    journey.page.get_by_role("button", name="Save card").click()
    pass_the_issuers_check(journey)
    assert "Card saved" in journey.banner()
    assert "Visa ending 3184" in journey.main_text()

    journey.follow("Invoices", within="#service-navigation")
    journey.follow(other)
    journey.follow("Pay by card")
    assert "Visa ending 3184" in journey.main_text()
    journey.press(f"Pay {other_gross}")
    assert journey.heading() == "Confirm the card payment"
    journey.page.get_by_role("button", name="Confirm the payment with your card issuer").click()
    pass_the_issuers_check(journey)
    assert "Payment made. The invoice is paid." in journey.banner()
    assert "Paid" in journey.heading() and "Paid by card on" in journey.main_text()
    paid_by_card = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and other in m.subject and "paid" in m.subject
    )
    assert other_gross in paid_by_card.body
    # One charge, however the journey went.
    assert len(card_payments.list("payment_intents")) == 1
    assert len(card_payments.list("charges")) == 1
    journey.follow("Invoices", within="#service-navigation")
    assert "Paid" in journey.page.locator(f"tr:has-text('{other}')").inner_text()


# --- B2: buy a service found from the home page ------------------------------------------------------


def _find_and_open(journey, word: str, title: str) -> None:
    """From the home page, search the catalogue for ``word`` and open the service ``title``."""
    journey.follow("Home", within="#service-navigation")
    journey.follow("Find services", within="main")
    journey.fill("Search by service, outcome or provider", word)
    journey.press("Search")
    journey.follow(title)
    assert journey.heading() == title


def test_b2_buy_a_service_the_question_page_catches_each_mistake_then_place_it(
    journey, live_server
):
    world = worlds.buying_world(live_server)
    buyer, provider = world.people.buyer, world.people.provider
    today = worlds.london_today()
    earliest = add_working_days(today, world.lead_time_days)
    start = add_working_days(today, world.lead_time_days + 2)
    next_year = date(world.budget_year + 1, 4, 14)  # a year the organisation has no budget for

    journey.sign_in_from_home(buyer.email, PASSWORD)
    _find_and_open(journey, world.word, world.listing)
    assert "£45.00" in journey.main_text()
    journey.follow("Buy this service")
    assert journey.heading() == f"Buy {world.listing}"

    # A tired first go: too many sessions, a start inside the provider's notice period and no
    # purchase order number.
    journey.fill("How many units?", "40")
    journey.fill("Start date", worlds.day_month_year(today + timedelta(days=1)))
    journey.fill("Planned end date", worlds.day_month_year(start + timedelta(days=90)))
    journey.fill("The person's CRN", "x654321")  # typed in lower case: taken as X654321
    journey.fill("Probation delivery unit (PDU)", "County Durham and Darlington")
    journey.choose("Continuity for the person")
    journey.press("Continue")
    found = journey.expect_errors(
        f"This service is sold in call-offs of at most {world.max_units} sessions",
        f"The provider needs {world.lead_time_days} working days' notice: the earliest start "
        f"is {earliest.day} {earliest:%B %Y}",
        "Enter the purchase order number",
    )
    assert [href for _, href in found] == ["#quantity", "#start_date", "#po_number"]
    assert journey.page.get_by_label("How many units?", exact=True).input_value() == "40"

    # Then a start next spring, in a year with no budget.
    journey.fill("How many units?", "12")
    journey.fill("Start date", worlds.day_month_year(next_year))
    journey.fill("Planned end date", worlds.day_month_year(next_year + timedelta(days=90)))
    journey.fill("Purchase order number", "NE-PO-4471")
    journey.press("Continue")
    label = f"{world.budget_year + 1}-{str(world.budget_year + 2)[-2:]}"
    found = journey.expect_errors(
        f"{world.people.buyer_name} has no budget for {label}, so it cannot fund this call-off"
    )
    assert [href for _, href in found] == ["#start_date"]

    journey.fill("Start date", worlds.day_month_year(start))
    journey.fill("Planned end date", worlds.day_month_year(start + timedelta(days=90)))
    journey.press("Continue")
    assert journey.heading() == "Check your answers before placing the call-off"
    answers = journey.main_text()
    assert "X654321" in answers and "NE-PO-4471" in answers
    assert "£45.00 per session excluding VAT" in answers
    assert "£540.00 excluding VAT, £540.00 including VAT" in answers  # 12 × £45.00, exempt

    # One change on second thoughts: ten sessions, not twelve.
    units = journey.page.locator(".govuk-summary-list__row", has_text="Units")
    journey.click_and_wait(units.get_by_role("link", name="Change"))
    assert journey.page.get_by_label("How many units?", exact=True).input_value() == "12"
    journey.fill("How many units?", "10")
    journey.press("Continue")
    assert "£450.00 excluding VAT, £450.00 including VAT" in journey.main_text()
    journey.press("Place call-off")

    assert "Call-off placed" in journey.main_text()
    reference = re.search(r"CO-\d{4}-\d{6}", journey.main_text()).group()
    assert f"We have sent it to {world.people.provider_name}" in journey.main_text()
    sent = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject.startswith(f"New call-off {reference}")
    )
    assert f"Dear {provider.name}," in sent.body
    assert f"{world.people.buyer_name} has placed call-off {reference}" in sent.body
    assert "10 sessions at £45.00 each" in sent.body and "X654321" in sent.body

    # The call-off is on the buyer's list and their home page.
    journey.follow("your call-offs")
    row = journey.page.locator(f"tr:has-text('{reference}')")
    assert "Sent" in row.inner_text() and world.listing in row.inner_text()
    journey.follow("Home", within="#service-navigation")
    placed = journey.page.locator(".app-dashboard-card", has_text="Your call-offs")
    assert "1 call-off sent, waiting for the provider to accept or decline" in placed.inner_text()
    journey.follow("See your call-offs", within=".app-dashboard-card")
    journey.follow(reference)
    assert journey.heading().startswith(f"Call-off {reference}")
    assert "Call-off placed" in journey.main_text()  # the timeline's first entry


# --- B4: follow call-offs ---------------------------------------------------------------------------

EXTRA_REJECTED = "Her flat is ready in January: the current end date is enough."


def _open_call_off(journey, reference: str) -> str:
    """From anywhere, by the navigation: the call-off's page; its main text."""
    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(reference)
    assert journey.heading().startswith(f"Call-off {reference}")
    return journey.main_text()


def _timeline(journey) -> list[tuple[str, str]]:
    """The timeline's entries, newest first: (title, description)."""
    items = journey.page.locator(".moj-timeline__item")
    found = []
    for i in range(items.count()):
        item = items.nth(i)
        description = item.locator(".moj-timeline__description")
        found.append(
            (
                item.locator(".moj-timeline__title").inner_text().strip(),
                " ".join(description.inner_text().split()) if description.count() else "",
            )
        )
    return found


def test_b4_follow_call_offs_agree_one_change_reject_another_and_cancel_a_third(
    journey, live_server
):
    world = worlds.following_world(live_server)
    buyer, provider = world.people.buyer, world.people.provider

    journey.sign_in_from_home(buyer.email, PASSWORD)
    # Two changes wait for the buyer's organisation.
    waiting = journey.page.locator(".app-dashboard-card", has_text="Variations to decide")
    assert "2 call-offs with a change proposed by the other side" in waiting.inner_text()

    # The completed call-off: its summary, each outcome and the timeline of the work.
    main = _open_call_off(journey, world.completed)
    assert "Completed" in journey.heading() and world.summary in main
    outcomes = journey.page.locator("table", has_text="Outcomes").inner_text()
    for outcome, result in world.outcomes:
        assert outcome in outcomes and result in outcomes
    timeline = _timeline(journey)
    assert [title for title, _ in timeline] == [
        "Completed",
        "Delivery recorded",
        "Accepted by the provider",
        "Call-off placed",
    ]
    assert "Outcomes: Settled accommodation: achieved" in timeline[0][1]
    assert "2 sessions on" in timeline[1][1] and "Attended" in timeline[1][1]

    # The first call-off being delivered: two sessions recorded, four more proposed.
    main = _open_call_off(journey, world.delivering)
    assert "10 sessions (1 delivered)" in main
    assert "Proposed by the provider" in main and "4 sessions more" in main
    timeline = _timeline(journey)
    titles = [title for title, _ in timeline]
    assert titles[:3] == ["Variation proposed", "Delivery recorded", "Delivery recorded"]
    assert "4 more sessions" in timeline[0][1]
    assert "Rent arrears need four more sessions" in timeline[0][1]
    assert "Did not attend (Acceptable absence)" in timeline[1][1]
    assert "Attended. Rent plan made" in timeline[2][1]
    agree = journey.page.get_by_role("button", name="Agree change").bounding_box()
    reject = journey.page.get_by_role("link", name="Reject change").bounding_box()
    assert agree["y"] == reject["y"], (agree, reject)  # side by side, on one line
    journey.press("Agree change")
    assert "Change agreed: the call-off has a new version." in journey.banner()
    main = journey.main_text()
    assert "14 sessions (1 delivered)" in main
    assert _timeline(journey)[0][0] == "Variation agreed"
    agreed = live_server.smtp.wait_for(
        lambda m: (
            m.to == provider.email
            and m.subject == f"Your proposed change to call-off {world.delivering} was agreed"
        )
    )
    assert "14 sessions" in agreed.body

    # The second: a later end date, which the buyer rejects (the reason given the second time).
    main = _open_call_off(journey, world.extending)
    assert world.extend_reason in main
    journey.follow("Reject change")
    assert journey.heading() == "Reject the proposed change"
    journey.press("Reject change")
    journey.expect_errors("Explain why you are rejecting the change")
    journey.fill("Why are you rejecting the change?", EXTRA_REJECTED)
    journey.press("Reject change")
    assert "Change rejected. The other side has been told." in journey.banner()
    assert EXTRA_REJECTED in journey.page.locator("h2:has-text('Changes') + ul").inner_text()
    rejected_entry = _timeline(journey)[0]
    assert rejected_entry == ("Variation rejected", EXTRA_REJECTED)
    rejected = live_server.smtp.wait_for(
        lambda m: (
            m.to == provider.email
            and m.subject == f"Your proposed change to call-off {world.extending} was rejected"
        )
    )
    assert f"The reason given: {EXTRA_REJECTED}" in rejected.body

    # The third is no longer needed: cancelled, the reason forgotten the first time and
    # "Other" chosen without a word the second.
    _open_call_off(journey, world.to_cancel)
    journey.follow("Cancel call-off")
    assert journey.heading() == "Cancel the call-off"
    journey.press("Cancel call-off")
    journey.expect_errors("Choose why you are cancelling")
    journey.choose("Other")
    journey.press("Cancel call-off")
    journey.expect_errors("Explain why you are cancelling")
    journey.choose("The person moved")
    journey.fill("More detail", "Moved to a hostel in Leeds on Friday.")
    journey.press("Cancel call-off")
    assert "Call-off cancelled." in journey.banner()
    assert "Cancelled" in journey.heading()
    main = journey.main_text()
    assert "The person moved" in main and "Moved to a hostel in Leeds on Friday." in main
    assert _timeline(journey)[0] == (
        "Cancelled",
        "The person moved: Moved to a hostel in Leeds on Friday.",
    )
    cancelled = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject == f"Call-off {world.to_cancel} is cancelled"
    )
    assert "Reason: The person moved – Moved to a hostel in Leeds on Friday." in cancelled.body

    # The list shows where each stands.
    journey.follow("Call-offs", within="#service-navigation")
    for reference, status in (
        (world.to_cancel, "Cancelled"),
        (world.delivering, "In delivery"),
        (world.completed, "Completed"),
    ):
        assert status in journey.page.locator(f"tr:has-text('{reference}')").inner_text()


# --- B5: above the direct-award limit ---------------------------------------------------------------


def test_b5_above_the_direct_award_limit_the_buyer_is_told_why_and_what_to_do_instead(
    journey, live_server
):
    world = worlds.limit_world(live_server)
    buyer, provider = world.people.buyer, world.people.provider
    start = add_working_days(worlds.london_today(), 7)
    sent_before = len(live_server.smtp.messages)

    journey.sign_in_from_home(buyer.email, PASSWORD)
    _find_and_open(journey, world.word, world.listing)
    assert "£60.00" in journey.main_text()
    journey.follow("Buy this service")
    # 100 sessions at £60.00: £6,000.00, under the limit alone; with the £25,000.00 of
    # supported housing already bought from the same provider in the same lot, over it.
    journey.fill("How many units?", "100")
    journey.fill("Start date", worlds.day_month_year(start))
    journey.fill("Planned end date", worlds.day_month_year(start + timedelta(days=180)))
    journey.fill("The person's CRN", "K204816")
    journey.fill("Probation delivery unit (PDU)", "Gateshead")
    journey.fill("Purchase order number", "NE-PO-5120")
    journey.choose("Only provider in the area")
    journey.press("Continue")
    [(_, href)] = journey.expect_errors(
        f"With this call-off, your organisation's direct awards with "
        f"{world.people.provider_name} in the Accommodation lot would come to £31,000.00 in 12 "
        f"months, over the direct award limit of {world.limit}: buy no more than £5,000.00 "
        "directly, or through a further competition"
    )
    assert href == "#quantity"
    # Beside it, why and what to do instead, in paragraphs.
    why = journey.page.locator("#direct-award-limit")
    assert why.locator("h2").inner_text() == "Why this cannot be a direct award"
    paragraphs = [" ".join(p.split()) for p in why.locator("p").all_inner_texts()]
    assert paragraphs[:3] == [
        f"Your organisation's call-offs with {world.people.provider_name} in the Accommodation "
        f"lot in the last 12 months come to {world.bought_gross} including VAT: "
        f"{world.bought} ({world.bought_gross}).",
        "Call-offs with the same provider in the same lot count together, whichever of its "
        "services they buy.",
        "Needs above the limit must go to further competition, not be split into smaller "
        "call-offs: start a further competition among every member of the lot in the area, or "
        "buy no more than £5,000.00 including VAT directly.",
    ]
    assert journey.heading() == f"Buy {world.listing}"  # still the question page

    # Nothing was placed: the list holds only what was bought before, and no one was emailed.
    journey.follow("Call-offs", within="#service-navigation")
    rows = journey.page.locator("table tbody tr")
    assert rows.count() == 1 and world.bought in rows.first.inner_text()
    new_call_offs = [
        m.subject
        for m in live_server.smtp.messages[sent_before:]
        if m.to == provider.email
        and m.subject.startswith("New call-off")
        and world.bought not in m.subject
    ]
    assert new_call_offs == []
    journey.follow("Home", within="#service-navigation")
    placed = journey.page.locator(".app-dashboard-card", has_text="Your call-offs")
    assert "1 call-off accepted or being delivered" in placed.inner_text()
    assert "sent, waiting" not in placed.inner_text()
