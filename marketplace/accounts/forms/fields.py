"""Field builders shared by the account forms, with GOV.UK wording and the models' limits."""

from __future__ import annotations

import enum

from flask_wtf import FlaskForm
from govuk_frontend_wtf.gov_form_base import GovIterableBase
from govuk_frontend_wtf.wtforms_widgets import (
    GovPasswordInput,
    GovSubmitInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import (
    FieldList,
    FormField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from marketplace.accounts.models import (
    CHARITY_NUMBER_PATTERN,
    COMPANY_NUMBER_PATTERN,
    EMAIL_MAX,
    NAME_MAX,
)
from marketplace.accounts.security import PASSWORD_MAX
from marketplace.core.forms import DATE_HINT, parse_day
from marketplace.core.validation import (
    FORBIDDEN_CHARACTERS,
    forbidden_characters_message,
    has_forbidden_characters,
)


def strip(value):
    """Trim, and turn control characters (newlines, tabs) into spaces: these are one-line fields."""
    if not isinstance(value, str):
        return value
    return "".join(" " if ch < " " or ch == "\x7f" else ch for ch in value).strip()


def upper_no_spaces(value):
    return "".join(value.split()).upper() if isinstance(value, str) else value


class BaseForm(FlaskForm):
    """All our forms strip surrounding spaces from text input, and refuse text that cannot be
    saved (``marketplace.core.validation``) in any field, naming the field."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            if unbound_field.field_class in (StringField,):
                filters = list(unbound_field.kwargs.get("filters", ()))
                if strip not in filters:
                    filters.insert(0, strip)
                unbound_field.kwargs["filters"] = filters
            return unbound_field.bind(form=form, **options)

        def render_field(self, field, render_kw):
            # govuk-frontend-wtf gives radios and checkboxes a hint whatever their description:
            # a question without one showed "None" under it (or an empty hint that screen
            # readers announce). No description, no hint, for every form.
            if not field.description and isinstance(field.widget, GovIterableBase):
                field_params = (getattr(field, "render_kw", None) or {}).get("params") or {}
                params = {**field_params, **(render_kw.get("params") or {})}
                params.setdefault("hint", None)
                render_kw = {**render_kw, "params": params}
            return super().render_field(field, render_kw)

    def validate(self, extra_validators=None) -> bool:
        # What was sent is checked before any validator runs, and validators see it without
        # the characters: a validator may look the value up, and PostgreSQL refuses a NUL.
        refused = [
            field
            for field in leaf_fields(self)
            if any(has_forbidden_characters(value) for value in field.raw_data or ())
        ]
        for field in refused:
            field.data = _without_forbidden(field.data)
        valid = super().validate(extra_validators)
        for field in refused:
            field.errors = [forbidden_characters_message(field.label.text)]
        return valid and not refused


def leaf_fields(form):
    """Every field of ``form`` that holds input, through nested forms and lists of fields."""
    for field in form:
        if isinstance(field, FormField):
            yield from leaf_fields(field.form)
        elif isinstance(field, FieldList):
            for entry in field.entries:
                yield from leaf_fields(entry.form) if isinstance(entry, FormField) else [entry]
        else:
            yield field


def _without_forbidden(value):
    if isinstance(value, str):
        return FORBIDDEN_CHARACTERS.sub("", value)
    if isinstance(value, list):
        return [_without_forbidden(item) for item in value]
    return value


def email_field(label: str = "Email address", description: str | None = None) -> StringField:
    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        render_kw={"autocomplete": "email", "spellcheck": "false"},
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
        render_kw={"autocomplete": "name", "spellcheck": "false"},
        validators=[
            DataRequired(message=message),
            Length(max=NAME_MAX, message=f"Name must be {NAME_MAX} characters or fewer"),
        ],
    )


def password_field(
    label: str = "Password",
    message: str = "Enter your password",
    description: str | None = None,
    *,
    same_as: str | None = None,
    new: bool = False,
) -> PasswordField:
    validators = [
        InputRequired(message=message),
        Length(max=PASSWORD_MAX, message=f"Password must be {PASSWORD_MAX} characters or fewer"),
    ]
    if same_as:
        validators.append(EqualTo(same_as, message="The passwords do not match"))
    return PasswordField(
        label,
        description=description,
        widget=GovPasswordInput(),
        validators=validators,
        render_kw={"autocomplete": "new-password" if new or same_as else "current-password"},
    )


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


def required_text_area(
    label: str, message: str, *, limit: int, description: str | None = None
) -> TextAreaField:
    """Free text that must be given (a reason, a summary), at most ``limit`` characters."""
    return TextAreaField(
        label,
        description=description,
        widget=GovTextArea(),
        validators=[
            DataRequired(message=message),
            Length(max=limit, message=f"Use {limit:,} characters or fewer"),
        ],
    )


def date_field(label: str, message: str) -> StringField:
    """A date that must be given, typed as 31 3 2027 or 2027-03-31 (``core.forms.parse_day``)."""

    def check(form, field):
        if field.data and parse_day(field.data) is None:
            raise ValidationError(f"{label} must be a real date, like 31 3 2027")

    return StringField(
        label,
        description=DATE_HINT,
        widget=GovTextInput(),
        validators=[DataRequired(message=message), check],
    )


def submit_field(label: str = "Continue") -> SubmitField:
    return SubmitField(label, widget=GovSubmitInput())


def enum_choices(
    members: list[enum.StrEnum] | tuple, label=lambda m: m.label
) -> list[SelectChoice]:
    return [SelectChoice(member.value, label(member)) for member in members]


class _FriendlyChoiceMixin:
    """A value that is not one of the choices gets the field's own message, not 'Not a valid choice'."""

    def __init__(self, *args, invalid_message: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invalid_message = invalid_message

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError as error:
            raise ValueError(self.invalid_message or str(error)) from error

    def pre_validate(self, form):
        required = next(
            (v for v in self.validators if isinstance(v, DataRequired | InputRequired)), None
        )
        if required is not None and required.message and self.data in (None, "", []):
            # Nothing chosen: the question's own "Choose …" message. WTForms checks the choice
            # before the validators run, so it would otherwise say "Not a valid choice", as
            # if the person had chosen something wrong.
            raise StopValidation(required.message)
        try:
            super().pre_validate(form)
        except ValueError as error:
            raise StopValidation(self.invalid_message or str(error)) from error


class ChoiceRadioField(_FriendlyChoiceMixin, RadioField):
    pass


class ChoiceSelectField(_FriendlyChoiceMixin, SelectField):
    pass


class ChoiceCheckboxesField(_FriendlyChoiceMixin, SelectMultipleField):
    pass


class OptionalChoiceRadioField(ChoiceRadioField):
    """Radios that may be left unanswered (the service decides when an answer is needed)."""

    def pre_validate(self, form):
        if self.data in (None, ""):
            return
        super().pre_validate(form)


YES_NO = [SelectChoice("yes", "Yes"), SelectChoice("no", "No")]
