"""Forms for a commissioner's forward plan: shape only. The choices are filled by the view, and
the rules (an area the organisation buys for, a quarter that has not ended) are the service's
(``services.forward_plan.check_details``), whose errors are shown on the fields they name."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextArea, GovTextInput
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceSelectField,
    OptionalChoiceRadioField,
    enum_choices,
    submit_field,
)
from marketplace.insight.models import PlannedRoute, ValueBand


class PlanForm(BaseForm):
    title = StringField(
        "Title",
        description="A short name providers will recognise",
        widget=GovTextInput(),
    )
    description = TextAreaField(
        "What you plan to buy (optional)",
        description="Who it is for, what and why: what a provider needs to know to get ready",
        widget=GovTextArea(),
        render_kw={"params": {"rows": 4}},
    )
    category_id = ChoiceSelectField("Lot", choices=[], widget=GovSelect(), validate_choice=False)
    area = ChoiceSelectField(
        "Area",
        description="A probation region, or a PCC area if you plan for only part of one",
        choices=[],
        widget=GovSelect(),
        validate_choice=False,
    )
    route = OptionalChoiceRadioField(
        "How will you buy it?",
        choices=enum_choices(list(PlannedRoute)),
        widget=GovRadioInput(),
        invalid_message="Choose a further competition or a call-off from the rate card",
    )
    value_band = OptionalChoiceRadioField(
        "Estimated value, including VAT",
        choices=enum_choices(list(ValueBand)),
        widget=GovRadioInput(),
        invalid_message="Choose a value band from the list",
    )
    financial_year = ChoiceSelectField(
        "Financial year", choices=[], widget=GovSelect(), validate_choice=False
    )
    quarter = OptionalChoiceRadioField(
        "Quarter",
        description="When you expect to start buying",
        choices=[
            SelectChoice("1", "Q1: April to June"),
            SelectChoice("2", "Q2: July to September"),
            SelectChoice("3", "Q3: October to December"),
            SelectChoice("4", "Q4: January to March"),
        ],
        widget=GovRadioInput(),
        invalid_message="Choose a quarter from 1 to 4",
    )
    submit = submit_field("Save as a draft")


class PublishPlanForm(BaseForm):
    submit = submit_field("Publish")


class WithdrawPlanForm(BaseForm):
    reason = TextAreaField(
        "Why are you withdrawing it?",
        description="Providers told of it are told this, if it was published",
        widget=GovTextArea(),
        render_kw={"params": {"rows": 3}},
    )
    submit = submit_field("Withdraw")
