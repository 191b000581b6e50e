"""Organisation settings: the electronic address, VAT registration and bank account that
e-invoices need. Bad input is refused with the field's message and writes nothing; bank details
are sealed at rest, never in the audit trail or the logs, and pages show the last four digits;
only the organisation's own administrators reach the pages (403 for its other people, 404 for
everyone else)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

import marketplace.accounts
from marketplace.accounts.models import Organisation, OrganisationType, Role
from marketplace.accounts.services.settings import (
    bank_details_of,
    set_bank_details,
    set_vat_registration,
)
from marketplace.core import sealed
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from tests.factories import make_member, make_organisation
from tests.pages import error_messages, main, text


@pytest.fixture
def provider(app):
    organisation = make_organisation(
        OrganisationType.PROVIDER_VCSE,
        name="Hope Housing",
        vat_registered=False,
        vat_number=None,
        endpoint_scheme=None,
        endpoint_id=None,
        bank_details_sealed=None,
        bank_account_last4=None,
    )
    admin = make_member(Role.PROVIDER_ADMIN, organisation)
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    commit()
    return organisation, admin, editor


def audit_rows(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def fresh(organisation: Organisation) -> Organisation:
    db.session.expire_all()
    return db.session.get(Organisation, organisation.id)


# ---------------------------------------------------------------------------------------------
# Bank details


def test_bank_details_are_sealed_audited_without_numbers_and_shown_by_last_four(
    web, provider, caplog
):
    organisation, admin, _ = provider
    caplog.set_level(logging.DEBUG)
    web.as_user(admin)
    response = web.post(
        "/organisation/settings/bank-account",
        data={
            "account_name": "Hope Housing",
            "sort_code": "40-47-84",
            "account_number": "41926819",
        },
    )
    assert response.status_code == 302
    row = fresh(organisation)
    assert row.bank_account_last4 == "6819"
    # Sealed at rest: neither number is in the stored value; it opens to them.
    assert "41926819" not in row.bank_details_sealed and "404784" not in row.bank_details_sealed
    details = bank_details_of(row)
    assert (details.account_name, details.sort_code, details.account_number) == (
        "Hope Housing",
        "404784",
        "41926819",
    )
    [event] = audit_rows("organisation.bank_details_changed")
    assert "41926819" not in str(event.before) + str(event.after)
    assert "404784" not in str(event.before) + str(event.after)
    assert event.after == {"bank_details": "recorded", "account_ending": "6819"}
    page = main(web.get("/organisation/settings"))
    assert "Account ending 6819" in page and "41926819" not in page and "404784" not in page
    form = text(web.get("/organisation/settings/bank-account"))
    assert "41926819" not in form and "404784" not in form
    assert "41926819" not in caplog.text and "404784" not in caplog.text


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("sort_code", "30995", "Enter a valid sort code: 6 digits, like 30-99-50"),
        ("sort_code", "30-99-5O", "Enter a valid sort code: 6 digits, like 30-99-50"),
        ("account_number", "1234567", "Enter a valid account number: 8 digits, like 00733445"),
        ("account_number", "123456789", "Enter a valid account number: 8 digits, like 00733445"),
        ("account_number", "", "Enter the account number"),
        ("account_name", "", "Enter the name on the account"),
    ],
)
def test_a_malformed_sort_code_or_account_number_is_refused(web, provider, field, value, message):
    organisation, admin, _ = provider
    data = {"account_name": "Hope Housing", "sort_code": "309950", "account_number": "00733445"}
    data[field] = value
    response = web.as_user(admin).post("/organisation/settings/bank-account", data=data)
    assert response.status_code == 422
    assert error_messages(response) == [message]
    assert f'href="#{field}"' in text(response)  # the summary links to the field
    assert fresh(organisation).bank_details_sealed is None
    assert audit_rows("organisation.bank_details_changed") == []


def test_a_sealed_value_that_was_altered_does_not_open(app):
    value = sealed.seal('{"account_number": "00733445"}')
    assert sealed.unseal(value) == '{"account_number": "00733445"}'
    assert sealed.seal("same") != sealed.seal("same")  # a fresh nonce each time
    tampered = value[:-6] + ("A" if value[-6] != "A" else "B") + value[-5:]
    with pytest.raises(sealed.SealBroken):
        sealed.unseal(tampered)
    with pytest.raises(sealed.SealBroken):
        sealed.unseal("00733445")
    with pytest.raises(sealed.SealBroken):
        sealed.unseal("v2.%%%")


def test_a_rotated_key_still_opens_what_the_old_one_sealed_and_a_foreign_key_does_not(app):
    old_key = "an-old-data-key-" + "x" * 48
    app.config["DATA_KEY"] = old_key
    try:
        value = sealed.seal("41926819")
        assert value.startswith("v2.") and "41926819" not in value
        app.config["DATA_KEY"] = "the-new-data-key-" + "y" * 48
        with pytest.raises(sealed.SealBroken):
            sealed.unseal(value)  # the new key alone does not open it
        app.config["DATA_KEY_FALLBACKS"] = [old_key]
        assert sealed.unseal(value) == "41926819"
        assert sealed.unseal(sealed.seal("41926819")) == "41926819"  # resealed under the new key
    finally:
        app.config["DATA_KEY"] = None
        app.config.pop("DATA_KEY_FALLBACKS", None)


# ---------------------------------------------------------------------------------------------
# VAT registration


@pytest.mark.parametrize("number", ["123456789", "GB12345678", "GB1234567890", "FR123456789"])
def test_a_malformed_vat_number_is_refused(web, provider, number):
    organisation, admin, _ = provider
    response = web.as_user(admin).post(
        "/organisation/settings/vat-registration",
        data={"vat_registered": "yes", "vat_number": number},
    )
    assert response.status_code == 422
    assert error_messages(response) == [
        "Enter a UK VAT registration number in the correct format: GB and 9 digits, "
        "like GB 123 4567 89"
    ]
    row = fresh(organisation)
    assert (row.vat_registered, row.vat_number) == (False, None)


def test_registered_needs_a_number_and_the_choice_is_required(web, provider):
    organisation, admin, _ = provider
    web.as_user(admin)
    response = web.post("/organisation/settings/vat-registration", data={"vat_registered": "yes"})
    assert error_messages(response) == ["Enter your VAT registration number"]
    response = web.post("/organisation/settings/vat-registration", data={})
    assert error_messages(response) == ["Say whether your organisation is registered for VAT"]
    assert fresh(organisation).vat_registered is False


def test_registering_and_deregistering_for_vat(web, provider):
    organisation, admin, _ = provider
    web.as_user(admin)
    response = web.post(
        "/organisation/settings/vat-registration",
        data={"vat_registered": "yes", "vat_number": "gb 123 4567 89"},
    )
    assert response.status_code == 302
    row = fresh(organisation)
    assert (row.vat_registered, row.vat_number) == (True, "GB123456789")
    web.post(
        "/organisation/settings/vat-registration",
        data={"vat_registered": "no", "vat_number": "GB123456789"},
    )
    row = fresh(organisation)
    assert (row.vat_registered, row.vat_number) == (False, None)
    assert len(audit_rows("organisation.vat_registration_changed")) == 2
    # The old address of the page still works for bookmarks.
    assert web.get("/invoices/vat-number").status_code == 301


# ---------------------------------------------------------------------------------------------
# Electronic address


@pytest.mark.parametrize(
    "scheme,identifier,message",
    [
        ("0088", "501234567890", "like 5012345678900"),  # 12 digits
        ("0088", "5012345678901", "check digit"),  # GS1 check digit wrong
        ("0060", "12345678", "like 123456789"),
        ("9932", "123456789", "like GB123456789"),
        ("0088", "", "Enter the Global Location Number (GLN, GS1)"),
        ("", "5012345678900", "Choose the kind of electronic address"),
        ("9999", "5012345678900", "Choose a kind of electronic address from the list"),
    ],
)
def test_a_malformed_electronic_address_is_refused(web, provider, scheme, identifier, message):
    organisation, admin, _ = provider
    response = web.as_user(admin).post(
        "/organisation/settings/electronic-address",
        data={"endpoint_scheme": scheme, "endpoint_id": identifier},
    )
    assert response.status_code == 422
    assert any(message in m for m in error_messages(response)), error_messages(response)
    assert fresh(organisation).endpoint_id is None


def test_an_approver_records_the_buyers_electronic_address(web, app):
    region = make_organisation(
        OrganisationType.PROBATION_REGION, endpoint_scheme=None, endpoint_id=None
    )
    approver = make_member(Role.APPROVER, region)
    commit()
    web.as_user(approver)
    assert "Organisation settings" in text(web.get("/team"))  # reached from the team page
    page = main(web.get("/organisation/settings"))
    assert "Electronic address" in page and "Bank account" not in page
    response = web.post(
        "/organisation/settings/electronic-address",
        data={"endpoint_scheme": "0088", "endpoint_id": "5012345678900"},
    )
    assert response.status_code == 302
    row = fresh(region)
    assert (row.endpoint_scheme, row.endpoint_id) == ("0088", "5012345678900")
    # A commissioner has no VAT registration or bank account pages.
    assert web.get("/organisation/settings/bank-account").status_code == 404
    assert web.get("/organisation/settings/vat-registration").status_code == 404


# ---------------------------------------------------------------------------------------------
# Who may


@pytest.mark.parametrize("page", ["", "/electronic-address", "/vat-registration", "/bank-account"])
def test_someone_elses_organisation_settings_are_404_and_non_admins_403(web, provider, page):
    organisation, admin, editor = provider
    other = make_organisation(OrganisationType.PROVIDER_VCSE, name="Other Charity")
    other_admin = make_member(Role.PROVIDER_ADMIN, other)
    commit()
    url = f"/organisation/settings{page}"
    # Another provider's administrator naming this one: 404, read or write.
    web.as_user(other_admin)
    assert web.get(f"{url}?organisation_id={organisation.id}").status_code == 404
    assert web.post(
        f"{url}?organisation_id={organisation.id}",
        data={"account_name": "X", "sort_code": "309950", "account_number": "11111111"},
    ).status_code in (404, 405)
    # Its own editor (not an administrator): 403.
    web.as_user(editor)
    assert web.get(url).status_code == 403
    assert web.get(f"{url}?organisation_id={organisation.id}").status_code == 403
    # The authority's administrator cannot change a provider's bank details either.
    authority_admin = make_member(Role.AUTHORITY_ADMIN)
    commit()
    web.as_user(authority_admin)
    assert web.get(f"{url}?organisation_id={organisation.id}").status_code == 404
    assert fresh(organisation).bank_details_sealed is None


def test_services_refuse_other_people(provider):
    organisation, _, editor = provider
    with pytest.raises(PermissionDenied):
        set_bank_details(
            editor, organisation, account_name="X", sort_code="309950", account_number="11111111"
        )
    with pytest.raises(PermissionDenied):
        set_vat_registration(editor, organisation, True, "GB123456789")
    with pytest.raises(BusinessRuleViolation):
        set_vat_registration(
            make_member(Role.PROVIDER_ADMIN, organisation), organisation, True, "GB12"
        )


def test_accounts_imports_nothing_of_the_catalogue_even_inside_a_function():
    # The catalogue imports accounts; the settings page's VAT warning comes back through
    # accounts.signals.organisation_settings_warnings instead (tests/catalogue/test_vat_registration.py).
    package = Path(marketplace.accounts.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            found += [
                f"{path.relative_to(package)}:{node.lineno} {name}"
                for name in names
                if name == "marketplace.catalogue" or name.startswith("marketplace.catalogue.")
            ]
    assert found == []
