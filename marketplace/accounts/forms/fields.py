"""Field builders shared by the account forms, with GOV.UK wording and the models' limits."""

from __future__ import annotations

import enum

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovPasswordInput,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import PasswordField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, Optional, Regexp

from marketplace.accounts.models import (
    CHARITY_NUMBER_PATTERN,
    COMPANY_NUMBER_PATTERN,
    EMAIL_MAX,
    NAME_MAX,
)
from marketplace.accounts.security import PASSWORD_MAX


def strip(value):
    return value.strip() if isinstance(value, str) else value


def upper_no_spaces(value):
    return "".join(value.split()).upper() if isinstance(value, str) else value


class BaseForm(FlaskForm):
    """All our forms strip surrounding spaces from text input."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            if unbound_field.field_class in (StringField,):
                filters = list(unbound_field.kwargs.get("filters", ()))
                if strip not in filters:
                    filters.insert(0, strip)
                unbound_field.kwargs["filters"] = filters
            return unbound_field.bind(form=form, **options)


def email_field(label: str = "Email address", description: str | None = None) -> StringField:
    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter an email address"),
            Length(max=EMAIL_MAX, message=f"Email address must be {EMAIL_MAX} characters or fewer"),
            Email(
                message="Enter an email address in the correct format, like name@example.com",
                check_deliverability=False,
            ),
        ],
    )


def name_field(label: str = "Full name", message: str = "Enter your full name") -> StringField:
    return StringField(
        label,
        widget=GovTextInput(),
        validators=[
            DataRequired(message=message),
            Length(max=NAME_MAX, message=f"Name must be {NAME_MAX} characters or fewer"),
        ],
    )


def password_field(label: str = "Password", message: str = "Enter your password",
                   description: str | None = None, *, same_as: str | None = None) -> PasswordField:
    validators = [
        InputRequired(message=message),
        Length(max=PASSWORD_MAX, message=f"Password must be {PASSWORD_MAX} characters or fewer"),
    ]
    if same_as:
        validators.append(EqualTo(same_as, message="The passwords do not match"))
    return PasswordField(label, description=description, widget=GovPasswordInput(), validators=validators)


def charity_number_field() -> StringField:
    return StringField(
        "Charity number (optional)",
        description="England and Wales: 6 or 7 digits. Scotland: SC and 6 digits. Northern Ireland: NIC and digits.",
        widget=GovTextInput(),
        filters=[upper_no_spaces],
        validators=[
            Optional(),
            Regexp(
                CHARITY_NUMBER_PATTERN,
                message="Enter a charity number in the correct format, like 1234567, SC012345 or NIC100123",
            ),
        ],
    )


def company_number_field() -> StringField:
    return StringField(
        "Companies House number (optional)",
        description="8 characters, like 01234567 or SC123456",
        widget=GovTextInput(),
        filters=[upper_no_spaces],
        validators=[
            Optional(),
            Regexp(
                COMPANY_NUMBER_PATTERN,
                message="Enter a Companies House number in the correct format, like 01234567 or SC123456",
            ),
        ],
    )


def submit_field(label: str = "Continue") -> SubmitField:
    return SubmitField(label, widget=GovSubmitInput())


def enum_choices(members: list[enum.StrEnum] | tuple, label=lambda m: m.label) -> list[SelectChoice]:
    return [SelectChoice(member.value, label(member)) for member in members]
