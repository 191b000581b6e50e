"""Money in integer pence: VAT per treatment, and splitting amounts into parts that sum exactly."""

from __future__ import annotations

import enum
from fractions import Fraction

BASIS_POINTS_WHOLE = 10_000


class VatTreatment(enum.StrEnum):
    STANDARD = "standard"
    REDUCED = "reduced"
    ZERO = "zero"
    EXEMPT = "exempt"
    OUTSIDE_SCOPE = "outside_scope"


# Rates as exact fractions; keep figures here in one place, not scattered in code.
VAT_RATES: dict[VatTreatment, Fraction] = {
    VatTreatment.STANDARD: Fraction(20, 100),
    VatTreatment.REDUCED: Fraction(5, 100),
    VatTreatment.ZERO: Fraction(0),
    VatTreatment.EXEMPT: Fraction(0),
    VatTreatment.OUTSIDE_SCOPE: Fraction(0),
}


def round_half_up(value: Fraction) -> int:
    """Round a non-negative or negative exact amount to whole pence, halves away from zero."""
    if value < 0:
        return -round_half_up(-value)
    return int(value + Fraction(1, 2))


def vat_pence(net_pence: int, treatment: VatTreatment) -> int:
    """VAT on a net amount, rounded half up to the penny (HMRC allows rounding per line)."""
    return round_half_up(net_pence * VAT_RATES[VatTreatment(treatment)])


def gross_pence(net_pence: int, treatment: VatTreatment) -> int:
    return net_pence + vat_pence(net_pence, treatment)


def allocate(total_pence: int, weights: list[int]) -> list[int]:
    """Split ``total_pence`` in proportion to ``weights`` so the parts sum exactly (largest remainder).

    Ties in the remainders go to the earlier weight, so the result is deterministic.
    """
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(w < 0 for w in weights) or sum(weights) == 0:
        raise ValueError("weights must be non-negative and not all zero")
    sign = -1 if total_pence < 0 else 1
    amount = abs(total_pence)
    whole = sum(weights)
    floors = [amount * w // whole for w in weights]
    remainders = [amount * w % whole for w in weights]
    short = amount - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in order[:short]:
        floors[index] += 1
    return [sign * part for part in floors]


def split_by_basis_points(total_pence: int, basis_points: list[int]) -> list[int]:
    """Split an amount by funder shares in basis points, which must sum to exactly 10,000."""
    if sum(basis_points) != BASIS_POINTS_WHOLE:
        raise ValueError("shares must sum to exactly 10,000 basis points (100%)")
    return allocate(total_pence, basis_points)


def decimal_pounds(pence: int) -> str:
    """Exact pence as pounds with two decimals and no symbol or separators ("1234.50",
    "-0.05"): for CSV downloads and e-invoices, which a machine reads."""
    sign = "-" if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    return f"{sign}{pounds}.{rest:02d}"
