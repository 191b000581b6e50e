"""Organisation settings: what e-invoices need (electronic address, VAT registration, bank
account)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from marketplace.accounts.models import (
    ACCOUNT_NAME_MAX,
    ACCOUNT_NUMBER_PATTERN,
    ENDPOINT_ID_MAX,
    ENDPOINT_SCHEMES,
    SORT_CODE_PATTERN,
    VAT_NUMBER_PATTERN,
    Organisation,
    User,
)
from marketplace.accounts.permissions import can_edit_invoicing_details
from marketplace.core import audit, sealed
from marketplace.core.clock import utcnow
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied


@dataclass(frozen=True)
class BankDetails:
    account_name: str
    sort_code: str  # six digits
    account_number: str  # eight digits

    @property
    def last4(self) -> str:
        return self.account_number[-4:]


def _require_invoicing_admin(actor: User, organisation: Organisation, *, provider: bool) -> None:
    if not can_edit_invoicing_details(actor, organisation):
        raise PermissionDenied("Only the organisation's administrators can do that")
    if provider and not organisation.is_provider:
        raise PermissionDenied("Only a provider records that")


def set_electronic_address(
    actor: User, organisation: Organisation, scheme: str | None, identifier: str | None
) -> None:
    """Record (or clear, with both empty) the organisation's electronic address: the EndpointID
    its e-invoices carry, in a scheme from Peppol's code list, checked against that scheme."""
    _require_invoicing_admin(actor, organisation, provider=False)
    scheme = (scheme or "").strip() or None
    identifier = re.sub(r"\s+", "", identifier or "").upper() or None
    errors: dict[str, list[str]] = {}
    if scheme is None and identifier is not None:
        errors["endpoint_scheme"] = ["Choose the kind of electronic address"]
    elif scheme is not None and scheme not in ENDPOINT_SCHEMES:
        errors["endpoint_scheme"] = ["Choose a kind of electronic address from the list"]
    elif scheme is not None:
        label, pattern, example = ENDPOINT_SCHEMES[scheme]
        if identifier is None:
            errors["endpoint_id"] = [f"Enter the {label}"]
        elif len(identifier) > ENDPOINT_ID_MAX or not pattern.fullmatch(identifier):
            errors["endpoint_id"] = [f"Enter a {label} in the correct format, like {example}"]
        elif scheme == "0088" and not _gs1_check_digit_ok(identifier):
            errors["endpoint_id"] = [
                "The Global Location Number's last digit (its check digit) is wrong: check it"
            ]
    if errors:
        raise BusinessRuleViolation(errors)
    before = {
        "endpoint_scheme": organisation.endpoint_scheme,
        "endpoint_id": organisation.endpoint_id,
    }
    organisation.endpoint_scheme, organisation.endpoint_id = scheme, identifier
    after = {"endpoint_scheme": scheme, "endpoint_id": identifier}
    if before != after:
        audit.record(
            actor, "organisation.endpoint_changed", organisation, before=before, after=after
        )


def _gs1_check_digit_ok(digits: str) -> bool:
    """GS1's check digit: weights 3 and 1 alternating from the right of the body."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def normalise_vat_number(text: str | None) -> str | None:
    return re.sub(r"[\s.-]+", "", text or "").upper() or None


def set_vat_registration(
    actor: User, organisation: Organisation, registered: bool | None, vat_number: str | None
) -> None:
    """A provider records whether it is registered for VAT and, if so, its VAT number; invoices
    issued from then on carry it. An unregistered provider charges no VAT."""
    _require_invoicing_admin(actor, organisation, provider=True)
    if registered is None:
        raise BusinessRuleViolation(
            {"vat_registered": ["Say whether your organisation is registered for VAT"]}
        )
    number = normalise_vat_number(vat_number) if registered else None
    if registered and number is None:
        raise BusinessRuleViolation({"vat_number": ["Enter your VAT registration number"]})
    if number is not None and not VAT_NUMBER_PATTERN.fullmatch(number):
        raise BusinessRuleViolation(
            {
                "vat_number": [
                    "Enter a UK VAT registration number in the correct format: GB and 9 digits, "
                    "like GB 123 4567 89"
                ]
            }
        )
    before = {"vat_registered": organisation.vat_registered, "vat_number": organisation.vat_number}
    organisation.vat_registered, organisation.vat_number = bool(registered), number
    after = {"vat_registered": organisation.vat_registered, "vat_number": number}
    if before != after:
        audit.record(
            actor, "organisation.vat_registration_changed", organisation, before=before, after=after
        )


def set_bank_details(
    actor: User,
    organisation: Organisation,
    *,
    account_name: str | None,
    sort_code: str | None,
    account_number: str | None,
) -> None:
    """A provider records the bank account its invoices are paid into by credit transfer. The
    details are sealed at rest; the audit records only that they changed, never the numbers."""
    _require_invoicing_admin(actor, organisation, provider=True)
    name = " ".join((account_name or "").split())
    sort = re.sub(r"[\s-]+", "", sort_code or "")
    number = re.sub(r"[\s-]+", "", account_number or "")
    errors: dict[str, list[str]] = {}
    if not name:
        errors["account_name"] = ["Enter the name on the account"]
    elif len(name) > ACCOUNT_NAME_MAX:
        errors["account_name"] = [
            f"The name on the account must be {ACCOUNT_NAME_MAX} characters or fewer"
        ]
    if not sort:
        errors["sort_code"] = ["Enter the sort code"]
    elif not SORT_CODE_PATTERN.fullmatch(sort):
        errors["sort_code"] = ["Enter a valid sort code: 6 digits, like 30-99-50"]
    if not number:
        errors["account_number"] = ["Enter the account number"]
    elif not ACCOUNT_NUMBER_PATTERN.fullmatch(number):
        errors["account_number"] = ["Enter a valid account number: 8 digits, like 00733445"]
    if errors:
        raise BusinessRuleViolation(errors)
    details = BankDetails(name, sort, number)
    had = organisation.has_bank_details
    organisation.bank_details_sealed = sealed.seal(
        json.dumps({"name": name, "sort_code": sort, "account_number": number})
    )
    organisation.bank_account_last4 = details.last4
    organisation.bank_details_changed_at = utcnow()
    # Only that they changed, and the last four digits pages show anyway.
    audit.record(
        actor,
        "organisation.bank_details_changed",
        organisation,
        before={"bank_details": "recorded" if had else "none"},
        after={"bank_details": "recorded", "account_ending": details.last4},
    )


def bank_details_of(organisation: Organisation) -> BankDetails | None:
    """The provider's bank account, unsealed; None if it has recorded none."""
    if organisation.bank_details_sealed is None:
        return None
    data = json.loads(sealed.unseal(organisation.bank_details_sealed))
    return BankDetails(data["name"], data["sort_code"], data["account_number"])
