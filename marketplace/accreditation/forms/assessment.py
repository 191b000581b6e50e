"""Forms for the assessor's pages and the authority's member pages: shape only.

The rules (a conflict needs details, a fail needs a comment, a rejection needs feedback, an
admission needs every mandatory answer passed) are the services' to enforce.
"""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextArea
from wtforms import TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceRadioField,
    ChoiceSelectField,
    submit_field,
)
from marketplace.accreditation.models import (
    ANSWER_TEXT_MAX,
    FEEDBACK_MAX,
    REASON_MAX,
    REMOVAL_REASON_LABELS,
    MembershipStatus,
)
from marketplace.accreditation.services.memberships import REMOVAL_DETAILS_MISSING

MEMBERSHIP_STATUS_LABELS = {
    MembershipStatus.ACTIVE: "Active",
    MembershipStatus.SUSPENDED: "Suspended",
    MembershipStatus.REMOVED: "Removed",
}


def _text(
    label: str, limit: int, *, description: str | None = None, id: str | None = None
) -> TextAreaField:
    """Free text whose presence the service checks (so its message shows in one place).

    ``id``: where two forms on one page each have a field of the same name, each needs an id of
    its own, or the error summary's link and the label reach the other form's field."""
    return TextAreaField(
        label,
        description=description,
        id=id,
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(max=limit, message=f"{label} must be {limit:,} characters or fewer"),
        ],
    )


class DeclarationForm(BaseForm):
    conflict = ChoiceRadioField(
        "Do you have a conflict of interest with this provider?",
        description=(
            "For example, you work or volunteer for it, a close friend or relative does, or you "
            "have a financial interest in it or in a competitor."
        ),
        widget=GovRadioInput(),
        choices=[
            SelectChoice("no", "No, I have no conflict of interest"),
            SelectChoice("yes", "Yes, I have a conflict of interest"),
        ],
        invalid_message="Select whether you have a conflict of interest",
    )
    details = _text(
        "Details of the conflict",
        REASON_MAX,
        description="Only if you have a conflict of interest.",
    )
    submit = submit_field("Continue")

    @property
    def has_conflict(self) -> bool:
        return self.conflict.data == "yes"


class MarkAnswerForm(BaseForm):
    outcome = ChoiceRadioField(
        "Does the answer meet the criterion?",
        widget=GovRadioInput(),
        choices=[SelectChoice("pass", "Pass"), SelectChoice("fail", "Fail")],
        invalid_message="Select pass or fail",
    )
    comment = _text(
        "Comment",
        FEEDBACK_MAX,
        description="The provider sees it. Say why if the answer fails.",
    )
    submit = submit_field("Save mark")


class ClarificationForm(BaseForm):
    question = _text(
        "Your question",
        ANSWER_TEXT_MAX,
        description="The provider is emailed. The decision deadline does not change.",
    )
    submit = submit_field("Ask for clarification")


class ExtendDeadlineForm(BaseForm):
    reason = _text(
        "Reason for extending the deadline",
        REASON_MAX,
        description="The provider is told. The deadline can be extended only once.",
    )
    submit = submit_field("Extend the deadline")


class DecisionForm(BaseForm):
    decision = ChoiceRadioField(
        "Decision",
        widget=GovRadioInput(),
        choices=[SelectChoice("admit", "Admit"), SelectChoice("reject", "Do not admit")],
        invalid_message="Select admit or do not admit",
    )
    feedback = _text(
        "Feedback for the provider",
        FEEDBACK_MAX,
        description="Required if you do not admit the provider to this lot.",
    )
    submit = submit_field("Save decision")

    @property
    def admit(self) -> bool:
        return self.decision.data == "admit"


class MemberFilterForm(BaseForm):
    """The filters of the member list (a GET form: no CSRF token)."""

    class Meta:
        csrf = False

    arrangement = ChoiceSelectField("Arrangement", widget=GovSelect(), choices=[])
    lot = ChoiceSelectField("Lot", widget=GovSelect(), choices=[])
    region = ChoiceSelectField("Region", widget=GovSelect(), choices=[])
    status = ChoiceSelectField("Status", widget=GovSelect(), choices=[])
    submit = submit_field("Apply filters")

    def __init__(self, *args, arrangements=(), categories=(), regions=(), **kwargs):
        super().__init__(*args, **kwargs)
        everything = [SelectChoice("", "All")]
        self.arrangement.choices = everything + [
            SelectChoice(str(a.id), a.name) for a in arrangements
        ]
        self.lot.choices = everything + [SelectChoice(c.code, c.name) for c in categories]
        self.region.choices = everything + [SelectChoice(r.code, r.name) for r in regions]
        self.status.choices = everything + [
            SelectChoice(status.value, label) for status, label in MEMBERSHIP_STATUS_LABELS.items()
        ]


class ReasonForm(BaseForm):
    reason = _text(
        "Why are you suspending this member?",
        REASON_MAX,
        description="The provider is told.",
        id="suspend-reason",
    )
    submit = submit_field("Suspend")


class ReinstateForm(BaseForm):
    submit = submit_field("Reinstate")


class RemovalForm(BaseForm):
    reason_code = ChoiceRadioField(
        "Why are you removing this member?",
        widget=GovRadioInput(),
        choices=[SelectChoice(code.value, label) for code, label in REMOVAL_REASON_LABELS.items()],
        invalid_message="Select why you are removing this member",
    )
    details = TextAreaField(
        "Details",
        description="The provider is told the reason.",
        widget=GovTextArea(),
        # Checked here as well as by the service, so that a form left empty is answered with
        # both of its mistakes at once rather than one per try.
        validators=[
            DataRequired(message=REMOVAL_DETAILS_MISSING),
            Length(max=REASON_MAX, message=f"Details must be {REASON_MAX:,} characters or fewer"),
        ],
    )
    submit = submit_field("Remove member")


class RedeclarationForm(BaseForm):
    reason = _text(
        "Why are you asking?",
        REASON_MAX,
        description=(
            "The provider is emailed and has 5 working days to renew its self-declaration, or "
            "its membership is suspended until it does."
        ),
        id="redeclaration-reason",
    )
    submit = submit_field("Ask for a renewed self-declaration")


class LotRedeclarationForm(RedeclarationForm):
    lot = ChoiceSelectField("Lot", widget=GovSelect(), choices=[], invalid_message="Select the lot")

    def __init__(self, *args, lots=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.lot.choices = [SelectChoice("", "Select a lot")] + [
            SelectChoice(str(lot.id), f"{lot.arrangement.name}: {lot.category.name}")
            for lot in lots
        ]


class RenewalDecisionForm(BaseForm):
    decision = ChoiceRadioField(
        "Does the renewed evidence meet the criterion?",
        widget=GovRadioInput(),
        choices=[
            SelectChoice("accept", "Yes, accept it"),
            SelectChoice("reject", "No, reject it"),
        ],
        invalid_message="Select whether you accept or reject the renewed evidence",
    )
    reason = _text(
        "Comment for the provider",
        REASON_MAX,
        description="Required if you reject it: say what is wrong, so the provider can fix it.",
    )
    submit = submit_field("Save decision")

    @property
    def accept(self) -> bool:
        return self.decision.data == "accept"
