"""Search, listing and comparison pages: public without contact details; buyers see contacts."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from marketplace.accounts.models import Role
from marketplace.accreditation.models import MembershipStatus, SuspensionCause
from marketplace.core.clock import utcnow
from tests.accreditation.factories import make_arrangement
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


def test_a_page_past_the_end_says_so_with_the_count_and_a_link_to_the_last_page(client, world):
    lot = world.listings["women"].lot
    for n in range(25):
        make_listing(lot, world.alpha, title=f"Extra {n}", region_codes=("A",))
    response = client.get("/services?q=extra&page=50")
    assert response.status_code == 200
    page = main(response)
    assert "No services match" not in page
    assert "There is no page 50 of these results" in page
    assert "<strong>25</strong> services found, on 2 pages" in page
    assert 'href="/services?page=2&amp;q=extra">Go to the last page (page 2)</a>' in page
    # The pages that exist are unchanged.
    assert "Page 2 of 2" in main(client.get("/services?q=extra&page=2"))


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


# --- issue 18: what was searched, the PCC area and lot filters, and the comparison


def _options(page: str, select_id: str) -> list[str]:
    """The options of a select, as a person reads them."""
    select = page.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return [
        unescape(re.sub(r"<[^>]+>", "", option)).strip()
        for option in re.findall(r"<option[^>]*>(.*?)</option>", select)
    ]


def test_the_page_says_what_was_searched_and_which_words_were_left_out(client, world):
    page = main(client.get("/services?q=the+recovery+group+for+women+OR+men"))
    assert (
        "Services that mention <strong>recovery</strong>, <strong>group</strong> and either "
        "<strong>women</strong> or <strong>men</strong> (left out as too common to search for: "
        "<strong>the</strong>, <strong>for</strong>)."
    ) in page
    assert "<strong>1</strong> service found" in page
    page = main(client.get("/services?q=the"))
    assert "<strong>the</strong>: too common to search for, so left out." in page
    assert "<strong>5</strong> services found" in page
    assert "mentor finds mentoring" in page  # the hint says how words match


def test_the_pcc_area_filter_counts_its_matches_like_the_others(client, world):
    page = main(client.get("/services"))
    options = _options(page, "pcc_area")
    assert "Cumbria (2)" in options  # coaching (all of region B) and emergency (Cumbria)
    assert "Durham (3)" in options
    assert "Kent (0)" in options
    assert "All areas" in options
    narrowed = _options(main(client.get("/services?q=emergency")), "pcc_area")
    assert "Cumbria (1)" in narrowed and "Durham (0)" in narrowed


def test_the_lot_filter_lists_the_lots_of_live_arrangements_with_counts(client, world):
    make_arrangement(lots=("WOM",), regions=("A",))  # pending: not a lot buyers can buy from yet
    options = _options(main(client.get("/services")), "lot")
    assert options == [
        "All lots",
        "Accommodation (3)",
        "Dependency and Recovery (1)",
        "Education, Training and Employment (1)",
    ]


def _compare_url(*listings, **search) -> str:
    args = [*search.items(), *(("id", listing.id) for listing in listings)]
    return "/services/compare?" + "&".join(f"{key}={value}" for key, value in args)


@pytest.mark.parametrize("how_many", [2, 3, 4])
def test_compare_is_a_table_with_row_headers_and_a_way_back_to_the_same_search(
    client, world, how_many
):
    chosen = [world.listings[k] for k in ("women", "coaching", "tenancy", "recovery")][:how_many]
    response = client.get(_compare_url(*chosen, q="support", region="A", sort="price"))
    assert response.status_code == 200
    page = main(response)
    assert '<table class="govuk-table app-compare' in page
    assert page.count('<th scope="col"') == how_many
    for label in ("Unit price", "Price including VAT", "Areas", "Risk of serious harm accepted"):
        assert f'<th scope="row" class="govuk-table__header">{label}</th>' in page
    for listing in chosen:
        assert listing.title in page
    ids = "".join(f"&amp;id={listing.id}" for listing in chosen)
    back = f'href="/services?q=support&amp;region=A&amp;sort=price{ids}"'
    assert text(response).count(back) == 2  # the back link and the link under the table


def test_back_from_compare_the_results_keep_the_selection(client, world):
    women, coaching = world.listings["women"], world.listings["coaching"]
    page = main(client.get(f"/services?region=A&id={women.id}&id={coaching.id}"))
    assert f'value="{women.id}" form="compare-form" checked' in page
    assert f'value="{coaching.id}" form="compare-form" checked' in page
    assert f'value="{world.listings["tenancy"].id}" form="compare-form">' in page
    # The comparison form carries the search, so that the comparison can return to it.
    compare_form = page.split('id="compare-form"', 1)[1].split("</form>", 1)[0]
    assert '<input type="hidden" name="region" value="A">' in compare_form
    assert 'name="id"' not in compare_form  # the chosen ones are all on this page


@pytest.mark.parametrize(
    "chosen, message",
    [
        ((), "Select 2 to 4 services to compare"),
        (("women",), "Select at least 2 services to compare: you selected 1"),
        (
            ("women", "coaching", "tenancy", "recovery", "emergency"),
            "Select no more than 4 services to compare: you selected 5",
        ),
    ],
)
def test_compare_too_few_or_too_many_is_answered_on_the_search_page(client, world, chosen, message):
    listings = [world.listings[key] for key in chosen]
    response = client.get(_compare_url(*listings, q="support", region="A"))
    assert response.status_code == 400
    assert error_messages(response) == [message]
    page = text(response)
    on_page = [int(pk) for pk in re.findall(r'id="compare-(\d+)"', page)]
    assert on_page  # the search's results, to choose from again
    chosen_here = [listing.id for listing in listings if listing.id in on_page]
    first = chosen_here[0] if chosen_here else on_page[0]
    assert f'href="#compare-{first}">{message}</a>' in page  # the summary links to the choice
    assert "Find services" in main(response) and 'value="support"' in main(response)
    for pk in on_page:  # the selection as it was
        checked = f'value="{pk}" form="compare-form" checked' in page
        assert checked == (pk in chosen_here)
