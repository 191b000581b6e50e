"""Demo standing authorisation for `flask demo load`: Lancashire's Police and Crime Commissioner
lets the North West probation region commit its share of co-funded call-offs this financial year
without asking, within limits. Given through the service, as its approver would, after the demo
call-offs are placed (so those still wait for the PCC to confirm its share)."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, User
from marketplace.core.clock import financial_year, london_date
from marketplace.funding import services

PER_CALL_OFF_PENCE = 250_000  # £2,500
ANNUAL_PENCE = 2_000_000  # £20,000


def load_funding_demo(
    organisations: dict[str, Organisation], people: dict[str, User]
) -> dict[str, int]:
    pcc, region = organisations.get("pcc-lancs"), organisations.get("pdu-nw")
    approver = people.get("pcc.approver")
    if pcc is None or region is None or approver is None:
        return {"authorisations": 0}
    services.create_authorisation(
        approver,
        pcc,
        services.NewAuthorisation(
            lead_buyer_id=region.id,
            financial_year=financial_year(london_date()),
            per_call_off_limit_pence=PER_CALL_OFF_PENCE,
            annual_limit_pence=ANNUAL_PENCE,
        ),
    )
    return {"authorisations": 1}
