"""Search, listing and comparison pages: public without contact details; buyers see contacts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketplace.accounts.models import Role
from marketplace.accreditation.models import MembershipStatus, SuspensionCause
from marketplace.db import utcnow
from tests.catalogue.factories import make_listing
from tests.catalogue.search_world import build_search_world
from tests.factories import make_member
from tests.pages import error_messages, main, text


@pytest.fixture
def world(app):
    return build_search_world()


def test_search_needs_no_sign_in_and_shows_visible_listings_with_counts(client, world):
    response = client.get("/services")
    assert response.status_code == 200
    page = main(response)
    assert "5</strong> services found" in page
    for title in ("Employment coaching", "Supported housing for women leaving custody"):
        assert title in page
    for hidden in ("CV workshops", "Paused coaching", "Housing support in the North West"):
        assert hidden not in page
    assert "moj-filter-layout" in page
    assert "Accommodation (3)" in page
    assert "North East (3)" in page
    assert "Remote (1)" in page
    assert "referrals" not in page  # no contact details in results


def test_filters_live_in_the_url_and_show_as_removable_tags(client, world):
    response = client.get("/services?q=coaching&region=A&setting=remote&sort=price")
    page = main(response)
    assert "1</strong> service found" in page
    assert "Employment coaching" in page
    assert "moj-filter__tag" in page
    # Removing the region keeps the rest.
    assert 'href="/services?q=coaching&amp;setting=remote&amp;sort=price"' in page
    assert 'value="remote" checked' in page


@pytest.mark.parametrize(
    "query",
    [
        "q=%22",
        "q=NEAR(x*",
        "q=title:housing",
        "q=-(housing",
        "q=" + "x" * 10_000,
        "page=99999",
        "page=-1",
        "page=abc",
        "sort=nonsense",
        "lot=NOPE&region=ZZ&pcc_area=nowhere",
    ],
)
def test_odd_input_answers_normally(client, world, query):
    response = client.get(f"/services?{query}")
    assert response.status_code == 200


def test_invalid_filter_values_are_explained_and_left_out(client, world):
    response = client.get("/services?max_price=cheap&age=old&month=someday&setting=underwater")
    assert response.status_code == 200
    assert error_messages(response) == [
        "Choose delivery settings from the list",
        "Enter an age between 0 and 120",
        "Enter a maximum price in pounds, like 50 or 49.99",
        "Choose a month from the list",
    ] or sorted(error_messages(response)) == sorted(
        [
            "Choose delivery settings from the list",
            "Enter an age between 0 and 120",
            "Enter a maximum price in pounds, like 50 or 49.99",
            "Choose a month from the list",
        ]
    )
    assert "5</strong> services found" in main(response)


def test_maximum_price_in_pounds(client, world):
    page = main(client.get("/services?max_price=50"))
    assert "3</strong> services found" in page
    page = main(client.get("/services?max_price=49.99"))
    assert "2</strong> services found" in page


def test_a_page_past_the_end_shows_the_last_page(client, world):
    lot = world.listings["women"].lot
    for n in range(25):
        make_listing(lot, world.alpha, title=f"Extra {n}", region_codes=("A",))
    response = client.get("/services?page=50")
    assert response.status_code == 200
    assert "Page 2 of 2" in main(response)


def test_no_results(client, world):
    page = main(client.get("/services?q=zebra"))
    assert "No services match your search" in page


def test_search_page_statements_do_not_grow_with_the_results(app, client, world, count_queries):
    url = "/services?q=housing&region=A&max_price=1000"
    cache = app.extensions["page_cache"]
    client.get(url)  # warm up
    cache.clear()  # measure the page as built, not as kept
    with count_queries() as small:
        assert client.get(url).status_code == 200
    lot = world.listings["women"].lot
    for n in range(45):
        make_listing(lot, world.alpha, title=f"Housing {n}", region_codes=("A",))
    client.get("/healthz")  # commits the new listings
    cache.clear()
    with count_queries() as large:
        page = main(client.get(url))
    assert "47</strong> services found" in page
    assert small.count == large.count <= 8
    # Kept: only the generation is read.
    with count_queries() as kept:
        client.get(url)
    assert kept.count < small.count


def test_a_kept_results_page_is_rebuilt_when_the_data_under_it_changes(client, world):
    assert "Employment coaching" in main(client.get("/services"))
    coaching = world.listings["coaching"]
    coaching.title = "Careers coaching"
    assert "Careers coaching" in main(client.get("/services"))
    world.listings["coaching"].prices[0].unit_price_pence = 2_000
    assert "£20.00 per session" in main(client.get("/services"))
    membership = world.alpha_acc_a
    membership.status = MembershipStatus.SUSPENDED
    membership.suspended_at = utcnow()
    membership.suspension_cause = SuspensionCause.AUTHORITY
    assert "Supported housing for women" not in main(client.get("/services"))


def test_signed_out_the_whole_page_is_kept_but_never_served_to_someone_signed_in(app, web, world):
    visitor = app.test_client()  # signed out throughout; ``web`` signs its own client in
    url = "/services?q=coaching"
    first = visitor.get(url)
    assert "Sign in" in text(first)
    kept = visitor.get(url)
    assert kept.get_data() == first.get_data()  # signed out: no CSRF token, nothing personal
    # A message waiting to be shown (say, after signing out) is shown, not the kept page.
    with visitor.session_transaction() as session:
        session["_flashes"] = [("success", "You have signed out")]
    assert "You have signed out" in text(visitor.get(url))
    assert "You have signed out" not in text(visitor.get(url))
    buyer = make_member(Role.BUYER, name="Casey Cache")
    signed_in = text(web.as_user(buyer).get(url))
    assert "Sign out" in signed_in and "Casey Cache" in signed_in
    assert "Employment coaching" in signed_in
    # A change to a listing moves the search topic on: the kept whole page is rebuilt.
    world.listings["coaching"].title = "Careers coaching"
    visitor.get("/healthz")
    assert "Careers coaching" in main(visitor.get(url))


def test_listing_page_public_hides_contact(client, world):
    listing = world.listings["women"]
    response = client.get(f"/services/{listing.id}")
    assert response.status_code == 200
    page = main(response)
    assert listing.title in page
    assert "£50.00 per week excluding VAT" in page
    assert "Exempt from VAT" in page
    assert "Tenancy sustained for 6 months" in page
    assert "Accommodation in North East" in page  # the provider's membership
    assert listing.contact_email not in page
    assert "sign in" in page


def test_listing_page_shows_buyers_the_contact_and_vat(web, world):
    buyer = make_member(Role.BUYER)
    listing = world.listings["emergency"]
    page = main(web.as_user(buyer).get(f"/services/{listing.id}"))
    assert listing.contact_email in page
    assert "£120.00 per bed-night excluding VAT" in page
    assert "£144.00 per bed-night" in page  # 20% VAT
    # Ten committed in the full month: none left then.
    assert "0 bed-nights" in page


def test_providers_do_not_see_other_providers_contacts(web, world):
    provider = make_member(Role.PROVIDER_ADMIN)
    listing = world.listings["women"]
    page = main(web.as_user(provider).get(f"/services/{listing.id}"))
    assert listing.contact_email not in page


def test_listing_page_flags_stale_details_and_future_prices(client, world):
    listing = world.listings["tenancy"]
    listing.confirmed_at = utcnow() - timedelta(days=181)
    page = main(client.get(f"/services/{listing.id}"))
    assert "Not confirmed for over 6 months" in page
    assert "£75.00 per session excluding VAT" in page
    assert "£90.00 per session" in page  # from next month
    fresh = main(client.get(f"/services/{world.listings['women'].id}"))
    assert "Not confirmed for over 6 months" not in fresh


@pytest.mark.parametrize("key", ["workshops", "paused", "withdrawn", "suspended", "advice"])
def test_listings_buyers_may_not_see_are_not_found(client, world, key):
    assert client.get(f"/services/{world.listings[key].id}").status_code == 404


def test_unknown_listing_is_not_found(client, world):
    assert client.get("/services/999999").status_code == 404
    assert client.get("/services/99999999999999").status_code == 404


def test_compare_two_listings_side_by_side(client, world):
    a, b = world.listings["women"], world.listings["coaching"]
    response = client.get(f"/services/compare?id={a.id}&id={b.id}")
    assert response.status_code == 200
    page = main(response)
    assert a.title in page and b.title in page
    assert a.contact_email not in page


def test_compare_more_than_four_is_refused(client, world):
    ids = [listing.id for key, listing in world.listings.items()][:5]
    response = client.get("/services/compare?" + "&".join(f"id={pk}" for pk in ids))
    assert response.status_code == 400
    assert error_messages(response) == ["You can compare up to 4 services at a time"]


def test_compare_unknown_or_hidden_listings_says_which(client, world):
    hidden = world.listings["workshops"]
    response = client.get(f"/services/compare?id={world.listings['women'].id}&id={hidden.id}")
    assert response.status_code == 404
    assert error_messages(response) == [
        f"Service {hidden.id} cannot be found: it may have been withdrawn"
    ]


@pytest.mark.parametrize("query", ["", "id=abc", "id=-1"])
def test_compare_without_usable_ids_is_a_bad_request(client, world, query):
    response = client.get(f"/services/compare?{query}")
    assert response.status_code == 400
    assert error_messages(response)


def test_buyers_find_services_from_the_navigation(web, world):
    buyer = make_member(Role.BUYER)
    page = text(web.as_user(buyer).get("/services"))
    assert 'href="/services"' in page
