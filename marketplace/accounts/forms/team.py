"""Forms for managing a team: invite someone, change a person's roles, confirm an action."""

from __future__ import annotations

from collections.abc import Iterable

from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovRadioInput, GovTextInput
from wtforms import RadioField, SelectMultipleField, StringField
from wtforms.validators import ValidationError

from marketplace.accounts.forms.fields import (
    BaseForm,
    email_field,
    enum_choices,
    name_field,
    submit_field,
)
from marketplace.accounts.models import Role
from marketplace.core.money import MoneyError, parse_pounds

ROLE_DESCRIPTIONS = {
    Role.BUYER: "Finds services and places call-offs.",
    Role.APPROVER: "Approves spend against the budget and manages the team.",
    Role.PROVIDER_ADMIN: "Manages the organisation's details, applications, rate card and team.",
    Role.PROVIDER_EDITOR: "Keeps the rate card up to date and records delivery.",
    Role.ASSESSOR: "Assesses providers' applications to join.",
    Role.AUTHORITY_ADMIN: "Sets up arrangements, manages organisations and sees the audit log.",
}


def ordered_roles(roles: Iterable[Role]) -> list[Role]:
    """Roles in a stable order (the order they are declared in)."""
    order = list(Role)
    return sorted(roles, key=order.index)


def role_choices(roles: Iterable[Role]):
    return enum_choices(ordered_roles(roles))


def role_hints(roles: Iterable[Role]) -> list[dict]:
    """Per-item hints for the GOV.UK radios or checkboxes, in the same order as the choices."""
    return [{"hint": {"text": ROLE_DESCRIPTIONS[role]}} for role in ordered_roles(roles)]


class InviteForm(BaseForm):
    name = name_field("Their full name", "Enter their full name")
    email = email_field("Their email address", "We will email them a link to join")
    role = RadioField(
        "What will they do?",
        description="You can change their roles later.",
        widget=GovRadioInput(),
        choices=[],
        invalid_choice_message="Select what they will do",
    )
    submit = submit_field("Send invitation")

    def __init__(self, *args, roles: Iterable[Role] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices(roles)
        self.role_hints = role_hints(roles)


class MemberRolesForm(BaseForm):
    roles = SelectMultipleField(
        "Roles",
        widget=GovCheckboxesInput(),
        description="Select all that apply.",
        choices=[],
        invalid_choice_message="Select roles from the list",
    )
    submit = submit_field("Save roles")

    def __init__(self, *args, roles: Iterable[Role] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.roles.choices = role_choices(roles)
        self.role_hints = role_hints(roles)

    def validate_roles(self, field) -> None:
        if not field.data:
            raise ValidationError(
                "Select at least one role, or remove the person from the team instead"
            )


class ConfirmForm(BaseForm):
    """Only the CSRF token and a button, for actions confirmed on their own page."""

    submit = submit_field("Confirm")


class LimitsForm(BaseForm):
    """A buyer's spend limit and an approver's approval limit, in pounds; blank: the default
    (spend) or no limit (approval). The service checks the range and who may have which."""

    spend_limit_pence = StringField(
        "Spend limit, in pounds",
        description=(
            "Above this, an approver must approve their call-offs. Leave it empty for the "
            "service's default."
        ),
        widget=GovTextInput(),
    )
    approval_limit_pence = StringField(
        "Approval limit, in pounds",
        description="The most they can approve on one call-off. Leave it empty for no limit.",
        widget=GovTextInput(),
    )
    submit = submit_field("Save limits")

    def pence(self, field) -> int | None:
        """The field's value in pence (after ``validate``)."""
        return parse_pounds(field.data)

    def _check_amount(self, field, what: str) -> None:
        try:
            parse_pounds(field.data, f"the {what}")
        except MoneyError as error:
            if error.reason == MoneyError.TOO_MANY_DECIMALS:
                raise ValidationError(f"Enter the {what} in whole pence, like 1250.50") from None
            if error.reason == MoneyError.NOT_A_NUMBER:
                raise ValidationError(
                    f"Enter the {what} as an amount in pounds and pence, like 500 or 1250.50"
                ) from None
            raise ValidationError(str(error)) from None

    def validate_spend_limit_pence(self, field) -> None:
        self._check_amount(field, "spend limit")

    def validate_approval_limit_pence(self, field) -> None:
        self._check_amount(field, "approval limit")
