"""Money arithmetic: VAT rounding and exact splits (property-based)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.core.money import (
    VatTreatment,
    allocate,
    gross_pence,
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
