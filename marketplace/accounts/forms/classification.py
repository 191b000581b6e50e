"""The VCSE and SME questions (shape only; the service checks the answers and the rules), asked
at registration, at the yearly confirmation and in the authority's correction."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput
from wtforms.validators import DataRequired

from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceRadioField,
    charity_number_field,
    date_field,
    enum_choices,
    required_text_area,
    submit_field,
)
from marketplace.accounts.models import StaffBand, TurnoverBand, VcseBasis

REASON_MAX = 2000  # organisation_classifications.reason

VCSE_HINT = (
    "Voluntary, community and social enterprise (VCSE) organisations are registered charities, "
    "charitable incorporated organisations (CIOs), community interest companies (CICs) and other "
    "not-for-profit organisations whose governing document keeps their surplus and assets for "
    "their purpose. Choose \u2018Not VCSE\u2019 for a company that can pay its profits to its "
    "owners, or a public body."
)
STAFF_HINT = (
    "Count everyone employed, part-time staff as a share of full time. A small or medium-sized "
    "enterprise (SME) has fewer than 250 staff and an annual turnover of \u00a344 million or less."
)
TURNOVER_HINT = (
    "From your latest annual accounts: income, for a charity. With fewer than 250 staff, a "
    "turnover of \u00a344 million or less makes the organisation an SME."
)


def vcse_basis_field(whose: str = "your organisation") -> ChoiceRadioField:
    message = f"Select {whose}\u2019s legal form, or that it is not VCSE"
    return ChoiceRadioField(
        f"What is {whose}\u2019s legal form?",
        description=VCSE_HINT,
        widget=GovRadioInput(),
        choices=enum_choices(list(VcseBasis)),
        validators=[DataRequired(message)],
        invalid_message=message,
    )


def staff_band_field(
    who: str = "your organisation", employs: str = "you employ"
) -> ChoiceRadioField:
    message = f"Select how many staff {employs}"
    return ChoiceRadioField(
        f"How many staff does {who} employ?",
        description=STAFF_HINT,
        widget=GovRadioInput(),
        choices=enum_choices(list(StaffBand)),
        validators=[DataRequired(message)],
        invalid_message=message,
    )


def turnover_band_field(whose: str = "your organisation") -> ChoiceRadioField:
    message = f"Select {whose}\u2019s annual turnover"
    return ChoiceRadioField(
        f"What is {whose}\u2019s annual turnover?",
        description=TURNOVER_HINT,
        widget=GovRadioInput(),
        choices=enum_choices(list(TurnoverBand)),
        validators=[DataRequired(message)],
        invalid_message=message,
    )


class ConfirmClassificationForm(BaseForm):
    """Confirming as it stands: the button alone."""

    submit = submit_field("Confirm, nothing has changed")


class ChangeClassificationForm(BaseForm):
    vcse_basis = vcse_basis_field()
    staff_band = staff_band_field()
    turnover_band = turnover_band_field()
    charity_number = charity_number_field()
    submit = submit_field("Save and confirm")


class CorrectClassificationForm(BaseForm):
    # The authority answers about the provider, not about its own organisation.
    vcse_basis = vcse_basis_field("the provider")
    staff_band = staff_band_field("the provider", "the provider employs")
    turnover_band = turnover_band_field("the provider")
    charity_number = charity_number_field()
    effective_from = date_field(
        "Date the correction applies from", "Enter the date the correction applies from"
    )
    reason = required_text_area(
        "Reason for the correction",
        "Enter the reason for the correction",
        limit=REASON_MAX,
        description="The provider\u2019s administrators are sent it, and it is kept in the history.",
    )
    submit = submit_field("Save correction")
