"""Forms for signing in, registering, confirming, resetting and changing passwords, and 2FA."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextInput
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from marketplace.accounts.forms.classification import (
    staff_band_field,
    turnover_band_field,
    vcse_basis_field,
)
from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceRadioField,
    ChoiceSelectField,
    charity_number_field,
    company_number_field,
    email_field,
    enum_choices,
    name_field,
    password_field,
    submit_field,
)
from marketplace.accounts.models import ORGANISATION_NAME_MAX, PROVIDER_TYPES, OrganisationType

PROVIDER_TYPE_ORDER = [
    OrganisationType.PROVIDER_VCSE,
    OrganisationType.PROVIDER_PRIVATE,
    OrganisationType.PROVIDER_PUBLIC,
]
assert set(PROVIDER_TYPE_ORDER) == PROVIDER_TYPES


class SignInForm(BaseForm):
    email = email_field()
    password = password_field()
    submit = submit_field("Sign in")


class TwoFactorForm(BaseForm):
    code = StringField(
        "Security code",
        description="Enter the 6-digit code from your authenticator app, or one of your recovery codes",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the security code"),
            Length(max=20, message="Enter the 6-digit code"),
        ],
    )
    submit = submit_field("Continue")


class RegisterProviderForm(BaseForm):
    organisation_name = StringField(
        "Organisation name",
        description="The name your organisation is registered under",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter your organisation's name"),
            Length(
                max=ORGANISATION_NAME_MAX,
                message=f"Organisation name must be {ORGANISATION_NAME_MAX} characters or fewer",
            ),
        ],
    )
    organisation_type = ChoiceRadioField(
        "What kind of organisation is it?",
        widget=GovRadioInput(),
        choices=enum_choices(PROVIDER_TYPE_ORDER),
        validators=[DataRequired(message="Select what kind of organisation it is")],
        invalid_message="Select what kind of organisation it is",
    )
    # Who is VCSE and SME: the first dated classification (accounts.services.classification).
    vcse_basis = vcse_basis_field()
    charity_number = charity_number_field()
    companies_house_number = company_number_field()
    staff_band = staff_band_field()
    turnover_band = turnover_band_field()
    region_id = ChoiceSelectField(
        "Main probation region (optional)",
        description="Where most of your work happens. You choose every region you serve when you apply.",
        widget=GovSelect(),
        coerce=lambda value: int(value) if value not in (None, "", "None") else None,
        validators=[Optional()],
        invalid_message="Select a probation region from the list",
    )
    name = name_field("Your full name")
    email = email_field("Your work email address", "We will send a link to confirm it")
    password = password_field(
        "Create a password",
        "Enter a password",
        "At least 10 characters. Three random words make a strong password.",
        new=True,
    )
    password_confirm = password_field(
        "Confirm your password", "Confirm your password", same_as="password"
    )
    submit = submit_field("Register")


class ResendConfirmationForm(BaseForm):
    email = email_field()
    submit = submit_field("Send a new link")


class ForgotPasswordForm(BaseForm):
    email = email_field()
    submit = submit_field("Send reset link")


class ResetPasswordForm(BaseForm):
    password = password_field(
        "New password",
        "Enter a new password",
        "At least 10 characters. Three random words make a strong password.",
        new=True,
    )
    password_confirm = password_field(
        "Confirm your new password", "Confirm your new password", same_as="password"
    )
    submit = submit_field("Set new password")


class ChangePasswordForm(BaseForm):
    current_password = password_field("Current password", "Enter your current password")
    new_password = password_field(
        "New password",
        "Enter a new password",
        "At least 10 characters. Three random words make a strong password.",
        new=True,
    )
    new_password_confirm = password_field(
        "Confirm your new password", "Confirm your new password", same_as="new_password"
    )
    submit = submit_field("Change password")


class ProfileForm(BaseForm):
    name = name_field()
    submit = submit_field("Save")


class TwoFactorSetupForm(BaseForm):
    code = StringField(
        "Security code from your app",
        description="Enter the 6-digit code your authenticator app shows",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the 6-digit code"),
            Length(max=10, message="Enter the 6-digit code"),
        ],
    )
    submit = submit_field("Turn on two-factor authentication")


class PasswordConfirmForm(BaseForm):
    password = password_field("Your password", "Enter your password")
    submit = submit_field("Continue")


class AcceptInvitationForm(BaseForm):
    name = name_field()
    password = password_field(
        "Create a password",
        "Enter a password",
        "At least 10 characters. Three random words make a strong password.",
        new=True,
    )
    password_confirm = password_field(
        "Confirm your password", "Confirm your password", same_as="password"
    )
    submit = submit_field("Accept invitation")


class EmptyForm(BaseForm):
    """A form with only the CSRF token, for POST-only buttons."""

    submit = submit_field("Continue")
