"""Typing a card into the card pages' Stripe form, as a buyer does, against localstripe's test
double of Stripe.js (its card element is plain inputs named by their placeholders; the real one
is Stripe's iframe)."""

from __future__ import annotations

CARD_ELEMENT = "#card-element"
VISA = "4242424242424242"
ALWAYS_AUTHENTICATE = "4000002760003184"  # 3-D Secure on setting up and on every payment
DECLINED = "4000000000000002"


def type_card(page, number: str) -> None:
    """Fill in the card element (it waits for Stripe.js to have mounted it)."""
    element = page.locator(CARD_ELEMENT)
    for placeholder, value in (
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", "31"),
        ("cvc", "123"),
        ("postal_code", "SW1A1"),
    ):
        element.locator(f"input[placeholder='{placeholder}']").fill(value)


def pass_the_issuers_check(ui) -> None:
    """Press 'Complete authentication' in the test double's 3-D Secure box: the page then sends
    its form, and a new page loads."""
    ui.click_and_wait(ui.page.get_by_role("button", name="Complete authentication"))
