"""The runs page's filter: which job (read from the query string; it changes nothing)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovSelect
from wtforms import SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional


class RunFilterForm(FlaskForm):
    class Meta:
        csrf = False

    job = SelectField(
        "Job",
        widget=GovSelect(),
        choices=[],
        default="",
        validators=[Optional()],
        invalid_choice_message="Choose a job from the list",
    )

    def __init__(self, *args, job_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.job.choices = [SelectChoice("", "All jobs")] + [
            SelectChoice(name, name) for name in job_names
        ]
