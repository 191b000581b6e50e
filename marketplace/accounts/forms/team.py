"""Forms for managing a team: invite someone, change a person's roles, confirm an action."""

from __future__ import annotations

from collections.abc import Iterable

from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovRadioInput
from wtforms import RadioField, SelectMultipleField
from wtforms.validators import ValidationError

from marketplace.accounts.forms.fields import (
    BaseForm,
    email_field,
    enum_choices,
    name_field,
    submit_field,
)
from marketplace.accounts.models import Role

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
