"""Forms for personal API tokens."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovTextInput
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from marketplace.accounts.forms.fields import BaseForm, submit_field
from marketplace.accounts.models import TOKEN_NAME_MAX


class ApiTokenForm(BaseForm):
    name = StringField(
        "Token name",
        description="So you can tell your tokens apart, for example “Case management export”",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter a name for the token"),
            Length(
                max=TOKEN_NAME_MAX,
                message=f"Token name must be {TOKEN_NAME_MAX} characters or fewer",
            ),
        ],
    )
    submit = submit_field("Create token")
