"""Money in integer pence: the one parser of typed pounds, VAT per treatment, and splitting
amounts into parts that sum exactly."""

from __future__ import annotations

import enum
import re
from fractions import Fraction

BASIS_POINTS_WHOLE = 10_000

# Pounds as people type them once commas and spaces are gone: an optional minus and pound sign
# (either order), whole pounds, and any decimals (more than two is refused with its own reason).
# ASCII digits only (\d alone also matches other scripts' digits, which int() reads).
# Fifteen digits of pounds stay far inside a BIGINT of pence; each form's rules set the real range.
_POUNDS = re.compile(
    r"(?P<sign>-?)£?(?P<sign_after>-?)(?P<pounds>\d{1,15})(?:\.(?P<decimals>\d+))?", re.ASCII
)


class MoneyError(ValueError):
    """Typed text that is not an amount of money in pounds and whole pence.

    ``reason`` is one of the class constants, for a form that words its own message;
    ``str(error)`` is a GOV.UK message about the amount's label."""

    NOT_A_NUMBER = "not_a_number"
    TOO_MANY_DECIMALS = "too_many_decimals"
    NEGATIVE = "negative"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_pounds(text: str | None, label: str = "the amount") -> int | None:
    """An amount typed in pounds ("45", "45.5", "£1,045.07", "1 250") as exact pence; None if blank.

    Integer arithmetic only, so 0.1 + 0.2 is never 0.30000000000000004. Raises ``MoneyError`` for
    text that is not a number, more than two decimal places (a fraction of a penny) or a negative
    amount; ``label`` ("the unit price") words its message."""
    cleaned = (text or "").strip().replace(",", "").replace(" ", "")
    if not cleaned:
        return None
    match = _POUNDS.fullmatch(cleaned)
    if match is None or (match["sign"] and match["sign_after"]):
        raise MoneyError(
            MoneyError.NOT_A_NUMBER,
            f"Enter {label} as a number in pounds and pence, like 45.00",
        )
    decimals = match["decimals"]
    if decimals is not None and len(decimals) > 2:
        raise MoneyError(
            MoneyError.TOO_MANY_DECIMALS,
            f"Enter {label} in pounds and pence with no more than 2 decimal places, like 45.50",
        )
    if match["sign"] or match["sign_after"]:
        raise MoneyError(MoneyError.NEGATIVE, f"{label[0].upper()}{label[1:]} cannot be negative")
    return int(match["pounds"]) * 100 + int((decimals or "0").ljust(2, "0"))


def pounds_or_none(text: str | None) -> int | None:
    """``parse_pounds`` for callers whose rules check the amount and word the error themselves:
    None when the text is blank or not an amount of pounds and whole pence."""
    try:
        return parse_pounds(text)
    except MoneyError:
        return None


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
