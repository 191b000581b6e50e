"""Money: the one parser of typed pounds, VAT rounding and exact splits (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.core.money import (
    MoneyError,
    VatTreatment,
    allocate,
    gross_pence,
    parse_pounds,
    pounds_or_none,
    split_by_basis_points,
    vat_pence,
)


@pytest.mark.parametrize(
    "net,treatment,vat",
    [
        (10_000, VatTreatment.STANDARD, 2_000),
        (1, VatTreatment.STANDARD, 0),  # 0.2p rounds down
        (3, VatTreatment.STANDARD, 1),  # 0.6p rounds up
        (10, VatTreatment.REDUCED, 1),  # 0.5p: half rounds up
        (9, VatTreatment.REDUCED, 0),
        (12_345, VatTreatment.ZERO, 0),
        (12_345, VatTreatment.EXEMPT, 0),
        (12_345, VatTreatment.OUTSIDE_SCOPE, 0),
        (-10, VatTreatment.REDUCED, -1),
    ],
)
def test_vat(net, treatment, vat):
    assert vat_pence(net, treatment) == vat
    assert gross_pence(net, treatment) == net + vat


def test_allocate_examples():
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]
    assert split_by_basis_points(1_000, [3_333, 3_333, 3_334]) == [333, 333, 334]
    assert allocate(0, [5, 5]) == [0, 0]


@pytest.mark.parametrize("weights", [[], [0, 0], [-1, 2]])
def test_allocate_bad_weights(weights):
    with pytest.raises(ValueError):
        allocate(100, weights)


def test_shares_must_make_100_percent():
    with pytest.raises(ValueError):
        split_by_basis_points(100, [5_000, 4_999])


@given(
    total=st.integers(min_value=-(10**12), max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=12).filter(
        any
    ),
)
def test_parts_sum_exactly_and_stay_within_a_penny_of_fair(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    whole = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part * whole - total * weight) < whole  # within one penny of the exact share


@given(
    net=st.integers(min_value=0, max_value=10**10), treatment=st.sampled_from(list(VatTreatment))
)
def test_vat_is_never_more_than_half_a_penny_off(net, treatment):
    from marketplace.core.money import VAT_RATES

    exact = net * VAT_RATES[treatment]
    assert abs(vat_pence(net, treatment) - exact) <= 0.5


# ---------------------------------------------------------------------------------------------
# Pounds as people type them: every form's amounts go through parse_pounds


@pytest.mark.parametrize(
    "typed,pence",
    [
        ("45", 4500),
        ("45.5", 4550),
        ("45.00", 4500),
        ("£1,045.07", 104507),
        ("0.10", 10),
        ("1 250.50", 125050),
        (" 30000 ", 3000000),
        ("999999999999999.99", 99999999999999999),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_pounds(typed, pence):
    assert parse_pounds(typed) == pence
    assert pounds_or_none(typed) == pence


@pytest.mark.parametrize(
    "typed,reason",
    [
        ("abc", MoneyError.NOT_A_NUMBER),
        ("1e3", MoneyError.NOT_A_NUMBER),
        ("NaN", MoneyError.NOT_A_NUMBER),
        ("12.", MoneyError.NOT_A_NUMBER),
        (".5", MoneyError.NOT_A_NUMBER),
        ("4 5.0.0", MoneyError.NOT_A_NUMBER),
        ("--5", MoneyError.NOT_A_NUMBER),
        ("-£-5", MoneyError.NOT_A_NUMBER),
        ("£", MoneyError.NOT_A_NUMBER),
        ("1000000000000000", MoneyError.NOT_A_NUMBER),  # 16 digits of pounds: not an amount
        ("١٢", MoneyError.NOT_A_NUMBER),  # digits of another script are not pounds
        ("45.505", MoneyError.TOO_MANY_DECIMALS),
        ("12.345", MoneyError.TOO_MANY_DECIMALS),
        ("1.500", MoneyError.TOO_MANY_DECIMALS),
        ("-1", MoneyError.NEGATIVE),
        ("-£5.00", MoneyError.NEGATIVE),
        ("£-5", MoneyError.NEGATIVE),
    ],
)
def test_parse_pounds_refuses_with_its_reason(typed, reason):
    with pytest.raises(MoneyError) as refused:
        parse_pounds(typed)
    assert refused.value.reason == reason
    assert pounds_or_none(typed) is None


def test_parse_pounds_words_its_message_with_the_label():
    with pytest.raises(MoneyError, match="^Enter the unit price as a number in pounds and pence"):
        parse_pounds("forty", "the unit price")
    with pytest.raises(MoneyError, match="^Enter the unit price in pounds and pence with no more"):
        parse_pounds("45.505", "the unit price")
    with pytest.raises(MoneyError, match="^The unit price cannot be negative$"):
        parse_pounds("-5.00", "the unit price")


@given(st.integers(min_value=0, max_value=10**17 - 1))
def test_parse_pounds_reads_back_what_pounds_write(pence):
    pounds, rest = divmod(pence, 100)
    assert parse_pounds(f"£{pounds:,}.{rest:02d}") == pence
