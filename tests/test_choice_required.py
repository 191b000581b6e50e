"""A question with options, sent with none chosen, says what to choose ("Choose why you are
cancelling"), never "Not a valid choice.", which reads as if the person had chosen something
wrong. WTForms checks the choice before the field's validators run; the choice fields of
marketplace/accounts/forms/fields.py give the question's own message first."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from werkzeug.datastructures import MultiDict
from wtforms.validators import DataRequired, InputRequired

import marketplace
from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceCheckboxesField,
    ChoiceRadioField,
    ChoiceSelectField,
)
from marketplace.core.db import commit
from marketplace.orders.services import placing
from tests.orders.factories import build_orders_world, details
from tests.pages import error_messages, text

CHOICE_FIELDS = (ChoiceRadioField, ChoiceSelectField, ChoiceCheckboxesField)


def _every_form() -> list[type[BaseForm]]:
    for module in pkgutil.walk_packages(marketplace.__path__, "marketplace."):
        if module.name.rsplit(".", 1)[-1].startswith("forms"):
            importlib.import_module(module.name)
    found, queue = [], list(BaseForm.__subclasses__())
    while queue:
        form = queue.pop()
        queue.extend(form.__subclasses__())
        found.append(form)
    return sorted(found, key=lambda form: f"{form.__module__}.{form.__qualname__}")


def _required_choices(form_class) -> list[tuple[str, str]]:
    """The form's choice questions that must be answered, with their "Choose …" message."""
    found = []
    for name, unbound in vars(form_class).items():
        if getattr(unbound, "field_class", None) not in CHOICE_FIELDS:
            continue
        for validator in unbound.kwargs.get("validators", ()):
            if isinstance(validator, DataRequired | InputRequired) and validator.message:
                found.append((name, validator.message))
    return found


CASES = [
    (form, name, message) for form in _every_form() for name, message in _required_choices(form)
]


def test_the_forms_have_required_choice_questions_to_check():
    names = {(form.__name__, name) for form, name, _ in CASES}
    assert {("CancelForm", "reason"), ("PlaceCallOffForm", "choice_reason")} <= names
    assert ("DeliveryForm", "attendance") in names


@pytest.mark.parametrize(
    ("form_class", "name", "message"),
    CASES,
    ids=[f"{form.__name__}.{name}" for form, name, _ in CASES],
)
def test_a_required_choice_left_unanswered_says_what_to_choose(app, form_class, name, message):
    with app.test_request_context("/", method="POST"):
        form = form_class(formdata=MultiDict(), meta={"csrf": False})
        field = form[name]
        if field.choices is None:  # chosen where the form is made (the organisations listed)
            field.choices = [("1", "One")]
        assert not field.validate(form)
        assert field.errors == [message]


def test_cancelling_with_no_reason_chosen_asks_for_the_reason(web, app):
    world = build_orders_world()
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    commit()
    web.as_user(world.buyer, world.region)
    page = web.post(f"/call-offs/{call_off.id}/cancel", data={})
    assert page.status_code == 422
    assert error_messages(page) == ["Choose why you are cancelling"]
    assert 'href="#reason"' in text(page)
