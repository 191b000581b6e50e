"""Co-funders' recharges: an invoice or credit note split by the funders' shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from marketplace.core.money import split_by_basis_points
from marketplace.invoices.models import (
    Invoice,
)
from marketplace.orders.models import CallOff, CallOffFunder


@dataclass(frozen=True)
class RechargePart:
    organisation_id: int
    basis_points: int
    net_pence: int
    vat_pence: int
    gross_pence: int


def recharge_parts(invoice: Invoice, call_off: CallOff | None = None) -> list[RechargePart]:
    """The invoice split by the call-off's funder shares (see ``split_among``)."""
    call_off = call_off or invoice.call_off
    return split_among(call_off.funders, invoice.net_pence, invoice.vat_pence)


def split_among(funders: Sequence[CallOffFunder], net: int, vat: int) -> list[RechargePart]:
    """A document's net and VAT (negative for a credit note) split by the funders' shares, lead
    first, each amount by largest remainder so the parts of the net, the VAT and the gross each
    sum exactly to the document's. The gross parts are the net and VAT parts added, so each
    funder's part is itself consistent."""
    funders = sorted(funders, key=lambda f: (not f.is_lead, f.organisation_id))
    shares = [f.basis_points for f in funders]
    nets = split_by_basis_points(net, shares)
    vats = split_by_basis_points(vat, shares)
    return [
        RechargePart(f.organisation_id, f.basis_points, part_net, part_vat, part_net + part_vat)
        for f, part_net, part_vat in zip(funders, nets, vats, strict=True)
    ]
