"""A question without a description has no hint: not "None", and not an empty hint either.

govuk-frontend-wtf gives radios and checkboxes a hint whatever the field's description, so every
yes/no question of an application without guidance showed "None" under it. BaseForm renders
them with no hint (marketplace/accounts/forms/fields.py)."""

from __future__ import annotations

import re

from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovRadioInput
from wtforms.fields.choices import SelectChoice

from marketplace.accounts.forms.fields import BaseForm, ChoiceCheckboxesField, ChoiceRadioField
from marketplace.accreditation.services import applications as app_services
from marketplace.core.db import commit
from tests.accreditation.builders import make_provider, make_world
from tests.pages import main

YES_NO = [SelectChoice("yes", "Yes"), SelectChoice("no", "No")]


class QuestionsForm(BaseForm):
    no_description = ChoiceRadioField("Plain?", choices=YES_NO, widget=GovRadioInput())
    none_description = ChoiceRadioField(
        "None given?", description=None, choices=YES_NO, widget=GovRadioInput()
    )
    described = ChoiceRadioField(
        "Described?", description="Say yes if it is", choices=YES_NO, widget=GovRadioInput()
    )
    boxes = ChoiceCheckboxesField(
        "Which?", description=None, choices=YES_NO, widget=GovCheckboxesInput()
    )


def hints(html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", text).strip()
        for text in re.findall(r'<div[^>]*class="govuk-hint[^"]*"[^>]*>(.*?)</div>', html, re.S)
    ]


def test_radios_and_checkboxes_have_a_hint_only_when_described(app):
    with app.test_request_context("/"):
        form = QuestionsForm(meta={"csrf": False})
        assert hints(str(form.no_description())) == []
        assert hints(str(form.none_description())) == []
        assert hints(str(form.boxes())) == []
        assert hints(str(form.described())) == ["Say yes if it is"]
        # A template's own hint still wins.
        given = str(form.no_description(params={"hint": {"text": "From the template"}}))
        assert hints(given) == ["From the template"]


def test_a_yes_no_question_without_guidance_shows_no_none_hint(web):
    world = make_world()
    organisation, admin = make_provider("Open Door Housing")
    application = app_services.start_application(admin, organisation, world.arrangement)
    app_services.choose_lots_and_areas(
        admin, application, [world.lot_a.id], [world.region_1.id], []
    )
    assert not world.safeguarding_a.guidance  # a yes/no question with no guidance
    commit()
    page = web.as_user(admin).get(
        f"/accreditation/applications/{application.id}/lots/{world.lot_a.id}"
    )
    assert page.status_code == 200
    html = main(page)
    assert world.safeguarding_a.question in html
    assert "None" not in hints(html)
    assert not [hint for hint in hints(html) if not hint]
