"""The card pages' Content-Security-Policy in a real browser that enforces it (every other
browser test bypasses it, to inject axe-core): Stripe.js (localstripe's double, from another
origin) loads and draws its card form, the page breaks no rule of its policy, and the pages that
do not take cards still refuse that origin. Where Stripe.js cannot load, the fallback shows."""

from __future__ import annotations

import pytest

from tests.e2e import worlds
from tests.e2e.cards import CARD_ELEMENT
from tests.e2e.conftest import TIMEOUT_MS
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e

# Each refusal by the policy, as the page sees it.
_WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture
def enforcing(browser, live_server):
    context = browser.new_context(base_url=live_server.url)  # the policy enforced
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(_WATCH_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, errors
    context.close()


def sign_in(page, email):
    page.goto("/sign-in")
    page.get_by_label("Email address", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()


def test_the_card_page_loads_stripe_js_under_its_policy(live_server, card_payments, enforcing):
    page, errors = enforcing
    world = worlds.invoice_world(live_server, issued=True)
    sign_in(page, world.people.approver.email)
    response = page.goto("/organisation/payment-card/new")
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert f"script-src 'self' {card_payments.url}" in policy
    page.locator(f"{CARD_ELEMENT} input[placeholder='number']").wait_for()
    assert page.locator("#card-form").is_visible()
    assert not page.locator("#card-fallback").is_visible()
    assert page.evaluate("window.__violations") == []
    assert errors == []


def test_where_stripe_js_does_not_load_the_fallback_says_what_to_do(
    live_server, card_payments, enforcing
):
    page, _ = enforcing
    world = worlds.invoice_world(live_server, issued=True)
    sign_in(page, world.people.approver.email)
    # Stripe.js blocked on its way (a network that drops it, an extension that blocks it).
    page.route(f"{card_payments.url}/js.stripe.com/**", lambda route: route.abort())
    page.goto("/organisation/payment-card/new")
    fallback = page.locator("#card-fallback")
    assert fallback.is_visible()
    assert "the form has not loaded" in fallback.inner_text()
    assert "pay an invoice by BACS" in fallback.inner_text()
    assert not page.locator("#card-form").is_visible()
