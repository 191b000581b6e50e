"""Organisation settings: electronic address, VAT registration and bank account (shape only; the
services check formats and rules)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextInput
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceRadioField,
    ChoiceSelectField,
    submit_field,
)
from marketplace.accounts.models import (
    ACCOUNT_NAME_MAX,
    ENDPOINT_ID_MAX,
    ENDPOINT_SCHEMES,
    VAT_NUMBER_MAX,
)


class ElectronicAddressForm(BaseForm):
    endpoint_scheme = ChoiceSelectField(
        "Kind of electronic address",
        description="From the Peppol list of electronic address schemes. Choose none to clear it.",
        widget=GovSelect(),
        choices=[SelectChoice("", "None")]
        + [
            SelectChoice(code, f"{label} ({code})")
            for code, (label, _pattern, _example) in ENDPOINT_SCHEMES.items()
        ],
        invalid_message="Choose a kind of electronic address from the list",
    )
    endpoint_id = StringField(
        "Electronic address",
        description="For example, a 13-digit Global Location Number like 5012345678900.",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=ENDPOINT_ID_MAX + 10)],
    )
    submit = submit_field("Save")


class VatRegistrationForm(BaseForm):
    vat_registered = ChoiceRadioField(
        "Is your organisation registered for VAT?",
        widget=GovRadioInput(),
        choices=[SelectChoice("yes", "Yes"), SelectChoice("no", "No")],
        validators=[InputRequired("Say whether your organisation is registered for VAT")],
        invalid_message="Say whether your organisation is registered for VAT",
    )
    vat_number = StringField(
        "VAT registration number",
        description="If registered: GB and 9 digits, like GB 123 4567 89.",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=VAT_NUMBER_MAX + 6)],
    )
    submit = submit_field("Save")


class BankAccountForm(BaseForm):
    account_name = StringField(
        "Name on the account",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=ACCOUNT_NAME_MAX + 10)],
    )
    sort_code = StringField(
        "Sort code", description="6 digits, like 30-99-50.", widget=GovTextInput()
    )
    account_number = StringField(
        "Account number", description="8 digits, like 00733445.", widget=GovTextInput()
    )
    submit = submit_field("Save")
