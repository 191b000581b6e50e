"""Organisation settings: what e-invoices need. An organisation's administrators record its
electronic address; a provider's also its VAT registration and bank account.

The settings of the current organisation are at fixed addresses; ``?organisation_id=`` names
another, which answers 404 unless the person works in it (403 if they do, without the right).
"""

from __future__ import annotations

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accounts import queries
from marketplace.accounts.forms.settings import (
    BankAccountForm,
    ElectronicAddressForm,
    VatRegistrationForm,
)
from marketplace.accounts.models import Organisation
from marketplace.accounts.permissions import can_edit_invoicing_details
from marketplace.accounts.services.settings import (
    set_bank_details,
    set_electronic_address,
    set_vat_registration,
)
from marketplace.accounts.session import current_organisation
from marketplace.accounts.signals import organisation_settings_warnings
from marketplace.accounts.views import bp
from marketplace.core.views_helpers import act_on_form


def _settings_organisation(*, provider: bool = False) -> Organisation:
    raw = request.args.get("organisation_id")
    organisation = current_organisation() if raw in (None, "") else queries.get_organisation(raw)
    if organisation is None:
        abort(404)
    if not can_edit_invoicing_details(current_user, organisation):
        abort(403 if current_user.roles_in(organisation) else 404)
    if provider and not organisation.is_provider:
        abort(404)
    return organisation


def _args(organisation: Organisation) -> dict:
    current = current_organisation()
    return (
        {}
        if current is not None and current.id == organisation.id
        else {"organisation_id": organisation.id}
    )


@bp.get("/organisation/settings")
@login_required
def organisation_settings():
    organisation = _settings_organisation()
    # Features above accounts warn about these settings (catalogue: listings that charge VAT
    # while the provider is not registered for it) by answering this signal.
    warnings = [found for _, found in organisation_settings_warnings.send(organisation) if found]
    return render_template(
        "accounts/settings.html",
        organisation=organisation,
        org_args=_args(organisation),
        warnings=warnings,
    )


@bp.route("/organisation/settings/electronic-address", methods=["GET", "POST"])
@login_required
def electronic_address():
    organisation = _settings_organisation()
    form = ElectronicAddressForm()
    if request.method == "GET":
        form.endpoint_scheme.data = organisation.endpoint_scheme or ""
        form.endpoint_id.data = organisation.endpoint_id or ""
    if act_on_form(
        form,
        lambda: set_electronic_address(
            current_user, organisation, form.endpoint_scheme.data, form.endpoint_id.data
        ),
        "Electronic address saved.",
    ):
        return redirect(url_for("accounts.organisation_settings", **_args(organisation)))
    return render_template(
        "accounts/settings_form.html",
        form=form,
        organisation=organisation,
        org_args=_args(organisation),
        title="Electronic address",
        lede="The address (Peppol endpoint) that e-invoices to or from your organisation are "
        "sent to. Your accounts team or e-invoicing provider can tell you which you use.",
    )


@bp.route("/organisation/settings/vat-registration", methods=["GET", "POST"])
@login_required
def vat_registration():
    organisation = _settings_organisation(provider=True)
    form = VatRegistrationForm()
    if request.method == "GET":
        form.vat_registered.data = "yes" if organisation.vat_registered else "no"
        form.vat_number.data = organisation.vat_number or ""
    registered = {"yes": True, "no": False}.get(form.vat_registered.data or "")
    if act_on_form(
        form,
        lambda: set_vat_registration(current_user, organisation, registered, form.vat_number.data),
        "VAT registration saved. Invoices you issue from now on show it.",
    ):
        return redirect(url_for("accounts.organisation_settings", **_args(organisation)))
    return render_template(
        "accounts/settings_form.html",
        form=form,
        organisation=organisation,
        org_args=_args(organisation),
        title="VAT registration",
        lede="A provider that is not registered for VAT cannot charge VAT: it can only list "
        "services outside the scope of VAT. Invoices already issued keep the VAT number they "
        "were issued with.",
    )


@bp.route("/organisation/settings/bank-account", methods=["GET", "POST"])
@login_required
def bank_account():
    organisation = _settings_organisation(provider=True)
    form = BankAccountForm()
    if act_on_form(
        form,
        lambda: set_bank_details(
            current_user,
            organisation,
            account_name=form.account_name.data,
            sort_code=form.sort_code.data,
            account_number=form.account_number.data,
        ),
        "Bank account saved.",
    ):
        return redirect(url_for("accounts.organisation_settings", **_args(organisation)))
    return render_template(
        "accounts/settings_form.html",
        form=form,
        organisation=organisation,
        org_args=_args(organisation),
        title="Bank account",
        lede="The account your invoices ask buyers to pay into by bank transfer. For your "
        "security the details are stored encrypted and only the last four digits of the "
        "account number are shown again: enter all of them to change them.",
    )
