"""Forms for evaluation and award: shape only (the services decide the rules and name the
fields they refuse). The score and moderation forms have one field per question, built for the
competition's questions (``score_<id>``, ``reason_<id>``, ``passed_<id>``)."""

from __future__ import annotations

from collections.abc import Sequence

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovTextArea, GovTextInput
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from marketplace.accounts.forms.fields import (
    YES_NO,
    BaseForm,
    OptionalChoiceRadioField,
    required_text_area,
    submit_field,
)
from marketplace.competitions.models import REASON_MAX, CompetitionQuestion


class DeclareForm(BaseForm):
    has_conflict = OptionalChoiceRadioField(
        "Do you have a conflict of interest with any of the bidders?",
        choices=YES_NO,
        widget=GovRadioInput(),
        description="For example a financial interest in a bidder, or a close relative who "
        "works for one. If you do, you will not score any bid.",
    )
    conflict_details = TextAreaField(
        "If yes, which bidder, and what is the conflict?", widget=GovTextArea()
    )
    submit = submit_field("Declare")


def score_form(questions: Sequence[CompetitionQuestion], *, moderation: bool = False):
    """A form with a score and a reason for each scored question (and, for moderation, passed
    or failed with a reason for each pass/fail question)."""
    fields: dict = {}
    for question in questions:
        if question.kind.scored:
            fields[f"score_{question.id}"] = StringField(
                f"Score (0 to {question.max_score})", widget=GovTextInput()
            )
        else:
            fields[f"passed_{question.id}"] = OptionalChoiceRadioField(
                "Does the bid meet this requirement?",
                choices=[SelectChoice("pass", "Pass"), SelectChoice("fail", "Fail")],
                widget=GovRadioInput(),
            )
        fields[f"reason_{question.id}"] = TextAreaField(
            "Reason" if not moderation else "Agreed reason", widget=GovTextArea()
        )
    fields["submit"] = submit_field("Save agreed scores" if moderation else "Save scores")
    return type("ScoreForm", (BaseForm,), fields)()


class ConfirmButtonForm(BaseForm):
    submit = submit_field("Continue")


class AwardDecisionForm(BaseForm):
    bid_id = OptionalChoiceRadioField(
        "Which bid do you award the contract to?", widget=GovRadioInput()
    )
    reason = TextAreaField(
        "If not the top-ranked bid, why?",
        widget=GovTextArea(),
        description="Required when you choose a bid that is not ranked first. Bidders see it.",
    )
    submit = submit_field("Record the award decision")


class NoAwardForm(BaseForm):
    reason = required_text_area(
        "Why is no bid suitable?",
        "Enter why no bid is suitable for the award",
        description="Every invited provider is told.",
        limit=REASON_MAX,
    )
    submit = submit_field("Close without award")
