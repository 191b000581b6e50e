"""Catalogue search: one data set, the same answers on SQLite and PostgreSQL (the suite runs on both)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accreditation.models import MembershipStatus, SuspensionCause
from marketplace.catalogue.models import (
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    ListingArea,
    ListingPrice,
    ListingStatus,
    RiskLevel,
    Sex,
)
from marketplace.catalogue.search.index import refresh_prices, reindex_all
from marketplace.catalogue.search.params import ProviderType, SearchParams, SortOrder
from marketplace.catalogue.search.queries import search
from marketplace.catalogue.search.terms import query_terms, terms
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from tests.accreditation.factories import make_lot_membership, pcc_area, region
from tests.catalogue.factories import make_listing
from tests.catalogue.search_world import TODAY, VISIBLE, build_search_world


@pytest.fixture
def world(app):
    return build_search_world()


def keys(world, result) -> list[str]:
    by_id = {listing.id: key for key, listing in world.listings.items()}
    return [by_id[hit.listing.id] for hit in result.page.items]


# Each case: the parameters and the listings expected, in order.
CASES = {
    "everything, by price": (
        SearchParams(),
        ["coaching", "recovery", "women", "tenancy", "emergency"],
    ),
    "text in title": (SearchParams(text="coaching"), ["coaching"]),
    "text in provider name": (
        SearchParams(text="alpha", sort=SortOrder.PRICE),
        ["women", "tenancy", "emergency"],
    ),
    "text in outcomes, plural folded": (
        SearchParams(text="tenancies", sort=SortOrder.PRICE),
        ["women", "tenancy"],
    ),
    "text in description": (SearchParams(text="apprenticeship"), ["coaching"]),
    "every word must match": (SearchParams(text="housing women"), ["women"]),
    "accents and case folded": (SearchParams(text="ÉMERGENCY"), ["emergency"]),
    "no match": (SearchParams(text="zebra"), []),
    "lot": (SearchParams(lot="ACC"), ["women", "tenancy", "emergency"]),
    "lot code in lower case": (SearchParams(lot="etE"), ["coaching"]),
    "unknown lot": (SearchParams(lot="NOPE"), []),
    "region A: its own area and a PCC area in it": (
        SearchParams(region="A"),
        ["coaching", "women", "tenancy"],
    ),
    "region B: a covered PCC area": (SearchParams(region="B"), ["coaching", "emergency"]),
    "unknown region": (SearchParams(region="Z"), []),
    "PCC area inside a covered region": (SearchParams(pcc_area="cleveland"), ["coaching", "women"]),
    "PCC area listed itself": (SearchParams(pcc_area="durham"), ["coaching", "women", "tenancy"]),
    "PCC area Cumbria": (SearchParams(pcc_area="cumbria"), ["coaching", "emergency"]),
    "setting": (SearchParams(settings=(DeliverySetting.REMOTE,)), ["coaching"]),
    "settings, any of": (
        SearchParams(settings=(DeliverySetting.REMOTE, DeliverySetting.CUSTODY)),
        ["coaching", "women", "emergency"],
    ),
    "format": (SearchParams(formats=(DeliveryFormat.GROUP,)), ["coaching", "recovery"]),
    "sex: women": (SearchParams(sex=Sex.FEMALE), ["coaching", "women", "tenancy", "emergency"]),
    "sex: men": (SearchParams(sex=Sex.MALE), ["coaching", "recovery", "tenancy", "emergency"]),
    "age 17": (SearchParams(age=17), ["coaching", "recovery", "tenancy", "emergency"]),
    "age 70": (SearchParams(age=70), ["recovery", "women", "emergency"]),
    "risk very high": (SearchParams(risk=RiskLevel.VERY_HIGH), ["recovery", "tenancy"]),
    "complexity low": (
        SearchParams(complexity=Complexity.LOW),
        ["coaching", "tenancy", "emergency"],
    ),
    "provider type": (SearchParams(provider_types=(ProviderType.PUBLIC,)), ["recovery"]),
    "provider types, any of": (
        SearchParams(provider_types=(ProviderType.PUBLIC, ProviderType.PRIVATE)),
        ["coaching", "recovery"],
    ),
    "maximum price": (SearchParams(max_price_pence=5_000), ["coaching", "recovery", "women"]),
    "capacity this month": (
        SearchParams(month=None),
        ["coaching", "recovery", "women", "tenancy", "emergency"],
    ),
    "two filters and text": (
        SearchParams(text="housing", region="A", max_price_pence=6_000),
        ["women"],
    ),
    "sort by provider": (
        SearchParams(sort=SortOrder.PROVIDER),
        ["women", "tenancy", "emergency", "coaching", "recovery"],
    ),
    "sort by price, highest first": (
        SearchParams(sort=SortOrder.PRICE_DESC),
        ["emergency", "tenancy", "women", "coaching", "recovery"],
    ),
    "relevance without text sorts by price": (
        SearchParams(sort=SortOrder.RELEVANCE),
        ["coaching", "recovery", "women", "tenancy", "emergency"],
    ),
}


@pytest.mark.parametrize("params, expected", CASES.values(), ids=CASES.keys())
def test_the_same_search_gives_the_same_listings_on_every_database(world, params, expected):
    assert keys(world, search(params)) == expected


def test_capacity_in_a_month(world):
    full = world.full_month
    assert keys(world, search(SearchParams(month=full))) == [
        "coaching",
        "recovery",
        "women",
        "tenancy",
    ]
    # Coaching has 100 a month, 95 committed: 5 left.
    assert keys(world, search(SearchParams(month=full, min_available=5))) == [
        "coaching",
        "recovery",
        "women",
        "tenancy",
    ]
    assert keys(world, search(SearchParams(month=full, min_available=6))) == [
        "recovery",
        "women",
        "tenancy",
    ]


def test_relevance_puts_a_title_match_first(world):
    result = search(SearchParams(text="housing"))
    found = keys(world, result)
    # All three Alpha Housing Trust listings match through the provider's name; the two with
    # "housing" in the title come first.
    assert sorted(found) == ["emergency", "tenancy", "women"]
    assert set(found[:2]) == {"women", "tenancy"}


def test_facets_count_the_matches_per_filter_value(world):
    result = search(SearchParams())
    facets = result.facets
    assert result.total == 5
    assert facets["lot"] == {"ACC": 3, "ETE": 1, "DNR": 1}
    assert facets["region"] == {"A": 3, "B": 2, "G": 1}
    assert facets["setting"] == {"community": 4, "custody": 2, "remote": 1}
    assert facets["format"] == {"one_to_one": 4, "group": 2}
    assert facets["sex"] == {"female": 4, "male": 4}
    assert facets["provider_type"] == {"vcse": 3, "private": 1, "public": 1}
    assert facets["risk"] == {"low": 5, "medium": 5, "high": 2, "very_high": 2}
    assert facets["complexity"] == {"low": 3, "medium": 4, "high": 3}


def test_facets_follow_the_filters(world):
    result = search(SearchParams(region="A"))
    assert result.total == 3
    assert result.facets["lot"] == {"ACC": 2, "ETE": 1}
    assert result.facets["region"] == {"A": 3, "B": 1}


def test_a_price_in_force_today_is_the_one_shown(world):
    result = search(SearchParams(text="tenancy first"))
    [hit] = result.page.items
    assert hit.unit_price_pence == 7_500


def stored_price(listing) -> tuple:
    """What the listing's index row carries: the price and the dates it is in force."""
    return tuple(
        db.session.execute(
            sa.text(
                "SELECT price_pence, price_from, price_to FROM listing_search_rows "
                "WHERE listing_id = :id"
            ).columns(
                sa.column("price_pence"),
                sa.column("price_from", sa.Date),
                sa.column("price_to", sa.Date),
            ),
            {"id": listing.id},
        ).one()
    )


def test_the_index_row_carries_the_price_in_force_and_its_dates(world):
    tenancy = world.listings["tenancy"]
    rise = tenancy.prices[1].effective_from
    price, since, until = stored_price(tenancy)
    assert (price, until) == (7_500, rise)
    assert since == tenancy.prices[0].effective_from


def test_on_the_day_a_new_price_takes_effect_searches_use_it_before_and_after_a_refresh(world):
    db.session.commit()
    tenancy = world.listings["tenancy"]
    rise = tenancy.prices[1].effective_from
    text = SearchParams(text="tenancy first")
    under_8000 = SearchParams(text="tenancy first", max_price_pence=8_000)

    # The row still carries 7,500 until the refresh: the search reads the price versions.
    assert [h.unit_price_pence for h in search(text, today=rise).page.items] == [9_000]
    assert search(under_8000, today=rise).total == 0
    assert search(under_8000).total == 1
    by_price = search(SearchParams(region="A", sort=SortOrder.PRICE_DESC), today=rise)
    assert keys(world, by_price)[0] == "tenancy"  # 9,000 is now the dearest in region A

    assert refresh_prices(today=rise) == 1
    assert stored_price(tenancy) == (9_000, rise, None)
    assert [h.unit_price_pence for h in search(text, today=rise).page.items] == [9_000]
    assert search(under_8000, today=rise).total == 0
    # Before the rise the row's price is not in force: the search still answers 7,500.
    assert [h.unit_price_pence for h in search(text).page.items] == [7_500]
    assert search(under_8000).total == 1
    assert refresh_prices(today=rise) == 0  # nothing left to refresh on that day


def test_a_price_change_from_today_reaches_the_index_in_the_same_flush(world):
    coaching = world.listings["coaching"]
    current = coaching.prices[-1]
    current.effective_to = TODAY
    coaching.prices.append(
        ListingPrice(unit_price_pence=3_300, effective_from=TODAY, created_at=utcnow())
    )
    db.session.flush()
    assert stored_price(coaching) == (3_300, TODAY, None)
    [hit] = search(SearchParams(text="employment coaching")).page.items
    assert hit.unit_price_pence == 3_300


def test_the_refresh_prices_command_rewrites_lapsed_rows(app, world):
    coaching = world.listings["coaching"]
    db.session.execute(
        sa.text("UPDATE listing_search_rows SET price_to = :day WHERE listing_id = :id"),
        {"day": TODAY, "id": coaching.id},
    )
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["catalogue", "refresh-prices"])
    assert result.exit_code == 0, result.output
    assert "Refreshed the price of 1 listing(s) in the search index." in result.output
    assert stored_price(coaching)[2] is None
    again = app.test_cli_runner().invoke(args=["catalogue", "refresh-prices"])
    assert "Refreshed the price of 0 listing(s)" in again.output


@pytest.mark.parametrize(
    "text",
    [
        '"',
        '"housing',
        "*",
        "hous*",
        "NEAR(housing women)",
        "housing NEAR women",
        "title:housing",
        "-housing",
        "(housing",
        "housing)",
        "housing AND NOT women OR",
        "^housing",
        "{title}: housing",
        "housing & women | !x",
        "'; DROP TABLE listings; --",
        "x" * 10_000,
        "housing " * 2_000,
        "\x00housing",
        "🏠 housing",
    ],
)
def test_hostile_text_answers_normally(world, text):
    result = search(SearchParams(text=text))
    assert result.total >= 0
    assert result.page.page == 1


def test_operators_are_plain_words(world):
    assert query_terms('title:"housing" NEAR(women*)') == ["titl", "hous", "near", "woman"]
    assert query_terms("x" * 10_000) == []  # longer than any word
    assert len(query_terms("a b c d e f g h i j k l m n o p")) == 12
    assert terms("Services, houses and classes") == ["servic", "hous", "and", "class"]
    keys_found = keys(world, search(SearchParams(text='"housing" women*')))
    assert keys_found == ["women"]


def test_pages_of_twenty_and_a_page_past_the_end_shows_the_last(world):
    alpha = world.alpha
    lot = world.listings["women"].lot
    for n in range(41):
        make_listing(
            lot, alpha, title=f"Extra housing {n:02d}", region_codes=("A",), price_pence=100 + n
        )
    first = search(SearchParams(lot="ACC"))
    assert first.total == 44
    assert first.page.pages == 3
    assert len(first.page.items) == 20
    second = search(SearchParams(lot="ACC", page=2))
    assert {h.listing.id for h in first.page.items}.isdisjoint(
        h.listing.id for h in second.page.items
    )
    last = search(SearchParams(lot="ACC", page=99))
    assert last.page.page == 3
    assert len(last.page.items) == 4


def test_equal_prices_are_ordered_by_provider_then_title(world):
    civic = world.civic
    lot = world.listings["recovery"].lot
    make_listing(lot, civic, title="Another recovery group", region_codes=("G",), price_pence=3_000)
    found = [hit.listing.title for hit in search(SearchParams(max_price_pence=3_000)).page.items]
    assert found == [
        "Employment coaching",
        "Another recovery group",
        "Drug and alcohol recovery group",
    ]


# --- visibility and keeping the index up to date


def test_only_published_listings_with_an_active_membership_are_found(world):
    assert set(keys(world, search(SearchParams()))) == VISIBLE
    for hidden in ("workshops", "paused", "withdrawn", "suspended", "advice"):
        assert hidden not in keys(world, search(SearchParams(text=world.listings[hidden].title)))


def test_suspending_the_membership_hides_the_listing_and_reinstating_shows_it(world):
    membership = world.alpha_acc_a
    membership.status = MembershipStatus.SUSPENDED
    membership.suspended_at = utcnow()
    membership.suspension_cause = SuspensionCause.AUTHORITY
    db.session.flush()
    # "tenancy" is in Durham, covered only by the region A membership; "emergency" by Cumbria.
    assert keys(world, search(SearchParams(lot="ACC"))) == ["emergency"]
    membership.status = MembershipStatus.ACTIVE
    membership.suspended_at = None
    membership.suspension_cause = None
    db.session.commit()
    assert keys(world, search(SearchParams(lot="ACC"))) == ["women", "tenancy", "emergency"]


def test_status_text_areas_and_provider_name_changes_are_indexed(world):
    women = world.listings["women"]
    women.status = ListingStatus.PAUSED
    women.paused_at = utcnow()
    db.session.flush()
    assert "women" not in keys(world, search(SearchParams()))
    women.status = ListingStatus.PUBLISHED
    women.title = "Refuge places"
    db.session.flush()
    assert keys(world, search(SearchParams(text="refuge"))) == ["women"]
    assert keys(world, search(SearchParams(text="custody leaving", lot="ACC"))) == []

    world.civic.name = "Phoenix Futures"
    db.session.flush()
    assert keys(world, search(SearchParams(text="phoenix"))) == ["recovery"]

    # Offered in Cumbria too: now found in region B.
    women.areas.append(ListingArea(pcc_area=pcc_area("cumbria")))
    db.session.flush()
    assert "women" in keys(world, search(SearchParams(region="B")))
    # Its only area removed: not covered, so not shown.
    emergency = world.listings["emergency"]
    emergency.areas.clear()
    emergency.areas.append(ListingArea(region=region("G")))
    db.session.flush()
    assert "emergency" not in keys(world, search(SearchParams()))


def test_a_rolled_back_change_leaves_the_index_as_it_was(world):
    db.session.commit()
    world.listings["women"].title = "Something else"
    db.session.flush()
    db.session.rollback()
    assert keys(world, search(SearchParams(text="women"))) == ["women"]


def empty_the_index() -> None:
    """Lose every index row, as a bulk load that bypassed the ORM would leave it."""
    tables = ["listing_search_areas", "listing_search_rows"]
    if db.session.get_bind().dialect.name == "sqlite":
        tables.append("listing_search")  # the FTS5 text; PostgreSQL keeps it in the rows
    for table in tables:
        db.session.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names


def test_reindex_all_rebuilds_the_same_index(world):
    db.session.commit()
    before = {p: keys(world, search(p)) for p, _ in CASES.values()}
    empty_the_index()
    assert search(SearchParams()).total == 0
    assert reindex_all() == len(VISIBLE)
    assert {p: keys(world, search(p)) for p, _ in CASES.values()} == before


def test_deleting_a_listing_removes_it_from_the_index(world):
    db.session.delete(world.listings["coaching"])
    db.session.flush()
    assert (
        db.session.scalar(sa.text("SELECT count(*) FROM listing_search_areas"))
        == len(VISIBLE) + 1 - 2
    )


# --- cost


def test_a_search_takes_the_same_few_statements_whatever_the_number_of_results(
    world, count_queries
):
    params = SearchParams(text="housing", region="A", max_price_pence=100_000)
    with count_queries() as small:
        search(params)
    lot = world.listings["women"].lot
    for n in range(30):
        make_listing(lot, world.alpha, title=f"Housing {n}", region_codes=("A",))
    db.session.commit()
    with count_queries() as large:
        result = search(params)
    assert result.total > 20
    assert small.count == large.count <= 8


def test_the_reindex_command_rebuilds_the_index(app, world):
    db.session.commit()
    empty_the_index()
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["catalogue", "reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 5 visible listing(s)." in result.output
    assert set(keys(world, search(SearchParams()))) == VISIBLE


# --- issue 18: the words a person types, places, and counts per PCC area


def test_a_word_finds_its_other_forms(world):
    lot = world.listings["recovery"].lot
    mentors = make_listing(
        lot,
        world.civic,
        title="Peer mentors",
        summary="Someone who has been there",
        region_codes=("G",),
    )
    mentoring = make_listing(
        lot, world.civic, title="Mentoring in recovery", summary="Weekly", region_codes=("G",)
    )
    found = {hit.listing.id for hit in search(SearchParams(text="mentor")).page.items}
    assert found == {mentors.id, mentoring.id}
    assert search(SearchParams(text="mentored")).total == 2
    # "housing" finds "houses"; "woman" finds "women"; a plural finds the singular.
    assert "women" in keys(world, search(SearchParams(text="houses woman")))
    accommodating = search(SearchParams(text="accommodating", sort=SortOrder.PRICE))
    assert keys(world, accommodating) == ["women", "emergency"]  # "accommodation" in both
    assert keys(world, search(SearchParams(text="employers"))) == ["coaching"]


def test_and_is_the_default_or_finds_either_and_common_words_are_left_out(world):
    # "and", "the" and "for" are never matched as words: no listing needs to contain them.
    assert keys(world, search(SearchParams(text="coaching and the interview"))) == ["coaching"]
    assert keys(world, search(SearchParams(text="the coaching for"))) == ["coaching"]
    assert keys(world, search(SearchParams(text="coaching recovery"))) == []
    either = search(SearchParams(text="coaching OR recovery", sort=SortOrder.PRICE))
    assert keys(world, either) == ["coaching", "recovery"]
    lower = search(SearchParams(text="coaching or recovery", sort=SortOrder.PRICE))
    assert keys(world, lower) == ["coaching", "recovery"]
    # OR joins the words either side of it; the other words must still match.
    assert keys(world, search(SearchParams(text="group women or men"))) == ["recovery"]
    query = SearchParams(text="the housing or coaching, and women").query
    assert [[word for _, word in group] for group in query.groups] == [
        ["housing", "coaching"],
        ["women"],
    ]
    assert query.ignored == ("the",)
    assert SearchParams(text="the and or of").query.groups == ()


def test_place_names_find_the_listings_covered_there(world):
    assert keys(world, search(SearchParams(text="coaching cumbria"))) == ["coaching"]
    assert keys(world, search(SearchParams(text="emergency north west"))) == ["emergency"]
    housing_durham = search(SearchParams(text="housing durham", sort=SortOrder.PRICE))
    assert keys(world, housing_durham) == ["women", "tenancy"]
    assert keys(world, search(SearchParams(text="recovery north east"))) == []
    assert keys(world, search(SearchParams(text="metropolitan police"))) == []
    # "Housing advice sessions" is offered in region B, which Alpha's memberships do not cover
    # as a whole: not found there.
    assert keys(world, search(SearchParams(text="housing lancashire"))) == []


def test_housing_manchester_finds_housing_in_greater_manchester(world):
    lot = world.listings["women"].lot
    make_lot_membership(lot, world.alpha, region_code="L")
    make_lot_membership(lot, world.delta, pcc_area_code="greater-manchester")
    in_region = make_listing(
        lot, world.alpha, title="Move-on flats", summary="Housing with support", region_codes=("L",)
    )
    in_pcc_area = make_listing(
        lot,
        world.delta,
        title="Supported housing",
        summary="Rooms with a key worker",
        region_codes=(),
        pcc_area_codes=("greater-manchester",),
    )
    make_listing(  # housing, but not in Manchester
        lot, world.delta, title="Housing in Cumbria", summary="Rooms", region_codes=("B",)
    )
    found = {hit.listing.id for hit in search(SearchParams(text="housing Manchester")).page.items}
    assert found == {in_region.id, in_pcc_area.id}
    assert search(SearchParams(text="greater manchester")).total == 2


def test_every_pcc_area_counts_what_its_filter_finds(world):
    lot = world.listings["women"].lot
    # Offered in region A as a whole and in Durham besides; and in two PCC areas of region B.
    make_listing(lot, world.alpha, title="Both", region_codes=("A",), pcc_area_codes=("durham",))
    make_lot_membership(lot, world.alpha, pcc_area_code="lancashire")
    make_listing(
        lot,
        world.alpha,
        title="Two areas",
        region_codes=(),
        pcc_area_codes=("cumbria", "lancashire"),
    )
    result = search(SearchParams())
    facets = result.facets
    assert facets["pcc_area"]["durham"] == 4  # women, tenancy, coaching and "Both", once each
    assert facets["pcc_area"]["cleveland"] == 3
    assert facets["pcc_area"]["cumbria"] == 3  # coaching, emergency, "Two areas"
    assert facets["pcc_area"]["lancashire"] == 2
    assert facets["pcc_area"]["merseyside"] == 1
    assert "kent" not in facets["pcc_area"]
    assert facets["region"]["B"] == 3  # "Two areas" once
    for _, code, _, _ in result.reference.pcc_areas:
        assert facets["pcc_area"].get(code, 0) == search(SearchParams(pcc_area=code)).total, code
    for _, code, _ in result.reference.regions:
        assert facets["region"].get(code, 0) == search(SearchParams(region=code)).total, code
    # They follow the other filters.
    assert search(SearchParams(lot="ETE")).facets["pcc_area"]["durham"] == 1


def test_only_lots_of_live_arrangements_are_lots_to_filter_by(world):
    reference = search(SearchParams()).reference
    assert sorted(code for _, code, _ in reference.lots) == ["ACC", "DNR", "ETE"]
    assert len(reference.categories) > 3
