"""Who is VCSE and SME, as of when: the classification services (registration, the yearly
confirmation, the authority's correction), their rules and refusals (nothing written), the audit
and emails, the daily reminder sent once, and the in-force reading the spend ledger relies on."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import (
    ClassificationSource,
    Organisation,
    OrganisationClassification,
    OrganisationType,
    Role,
    StaffBand,
    TurnoverBand,
    VcseBasis,
)
from marketplace.accounts.queries import classifications_in_force, last_confirmed_on
from marketplace.accounts.services import registration
from marketplace.accounts.services.classification import (
    ClassificationAnswers,
    confirm_classification,
    correct_classification,
    record_at_registration,
    send_confirmation_reminders,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import LONDON, frozen_at, london_date
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.models import Notification
from tests.factories import make_member, make_organisation
from tests.pages import count

SMALL_CHARITY = ClassificationAnswers("registered_charity", "10_to_49", "up_to_2m")
LARGE_COMPANY = ClassificationAnswers("not_vcse", "250_or_more", "over_44m")


def _joined(organisation: Organisation, days_ago: int) -> None:
    organisation.created_at = datetime.now(LONDON) - timedelta(days=days_ago)


@pytest.fixture
def world(app):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, charity_number="1123456")
    _joined(provider, 800)
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    editor = make_member(Role.PROVIDER_EDITOR, provider)
    authority = make_member(Role.AUTHORITY_ADMIN)
    other = make_member(Role.PROVIDER_ADMIN)
    commit()
    return type(
        "World",
        (),
        {"provider": provider, "admin": admin, "editor": editor, "authority": authority,
         "other": other},
    )  # fmt: skip


def entries(organisation) -> list[OrganisationClassification]:
    return list(
        db.session.scalars(
            sa.select(OrganisationClassification)
            .where(OrganisationClassification.organisation_id == organisation.id)
            .order_by(OrganisationClassification.id)
        )
    )


def test_registration_records_the_first_classification_with_its_flags(app):
    user = registration.register_provider(
        registration.ProviderRegistration(
            organisation_name="Hope Trust",
            organisation_type=OrganisationType.PROVIDER_VCSE,
            charity_number="1234567",
            companies_house_number=None,
            region_id=None,
            name="Sam",
            email="sam@hope.example",
            password="lantern otter quarry 1987",
            classification=SMALL_CHARITY,
        )
    )
    commit()
    organisation = user.organisations[0]
    [entry] = entries(organisation)
    assert entry.source is ClassificationSource.REGISTRATION
    assert entry.effective_from == london_date()
    assert (entry.vcse, entry.sme) == (True, True)
    assert entry.recorded_by_id == user.id
    assert count(AuditEvent, AuditEvent.action == "classification.registered") == 1


def test_registration_as_a_registered_charity_asks_for_the_charity_number(app):
    details = registration.ProviderRegistration(
        organisation_name="Hope Trust",
        organisation_type=OrganisationType.PROVIDER_VCSE,
        charity_number=None,
        companies_house_number=None,
        region_id=None,
        name="Sam",
        email="sam@hope.example",
        password="lantern otter quarry 1987",
        classification=SMALL_CHARITY,
    )
    with pytest.raises(BusinessRuleViolation) as refused:
        registration.register_provider(details)
    assert refused.value.errors == {"charity_number": ["Enter your registered charity number"]}
    db.session.rollback()
    assert count(Organisation) == 0 and count(OrganisationClassification) == 0


@pytest.mark.parametrize(
    "answers,field",
    [
        (ClassificationAnswers("charity_ish", "under_10", "up_to_2m"), "vcse_basis"),
        (ClassificationAnswers("cio", "", "up_to_2m"), "staff_band"),
        (ClassificationAnswers("cio", "under_10", None), "turnover_band"),
    ],
)
def test_unknown_or_missing_answers_are_refused(world, answers, field):
    with pytest.raises(BusinessRuleViolation) as refused:
        confirm_classification(world.admin, world.provider, answers)
    assert field in refused.value.errors
    assert entries(world.provider) == []


def test_sme_is_fewer_than_250_staff_and_turnover_at_most_44_million(world):
    cases = [
        ("50_to_249", "10m_to_44m", True),
        ("250_or_more", "up_to_2m", False),
        ("under_10", "over_44m", False),
    ]
    for staff, turnover, sme in cases:
        entry = confirm_classification(
            world.admin, world.provider, ClassificationAnswers("cic", staff, turnover)
        )
        assert (entry.vcse, entry.sme) == (True, sme)
    entry = confirm_classification(world.admin, world.provider, LARGE_COMPANY)
    assert (entry.vcse, entry.sme) == (False, False)


def test_confirming_unchanged_adds_a_confirmation_entry(world):
    record_at_registration(world.admin, world.provider, SMALL_CHARITY)
    commit()
    with frozen_at(datetime.now(LONDON) + timedelta(days=400)):
        entry = confirm_classification(world.admin, world.provider)
        commit()
        assert entry.source is ClassificationSource.CONFIRMATION
        assert entry.effective_from == london_date()
        assert (entry.vcse_basis, entry.staff_band) == (
            VcseBasis.REGISTERED_CHARITY,
            StaffBand.FROM_10_TO_49,
        )
        assert last_confirmed_on(world.provider.id) == london_date()
    assert len(entries(world.provider)) == 2


def test_confirming_with_no_classification_asks_for_the_answers(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        confirm_classification(world.admin, world.provider)
    assert "vcse_basis" in refused.value.errors


def test_only_the_providers_administrators_confirm(world):
    with pytest.raises(PermissionDenied):
        confirm_classification(world.editor, world.provider, SMALL_CHARITY)
    with pytest.raises(NotFound):
        confirm_classification(world.other, world.provider, SMALL_CHARITY)
    with pytest.raises(NotFound):
        confirm_classification(world.admin, make_organisation(OrganisationType.PCC))
    assert entries(world.provider) == []


def test_the_authority_corrects_from_a_past_day_and_the_provider_is_emailed(world):
    record_at_registration(world.admin, world.provider, SMALL_CHARITY)
    commit()
    today = london_date()
    day = today - timedelta(days=200)
    entry = correct_classification(
        world.authority,
        world.provider,
        LARGE_COMPANY,
        effective_from=day,
        reason="Its accounts show it is a company limited by shares",
    )
    commit()
    assert entry.source is ClassificationSource.CORRECTION and entry.recorded_by_id
    # In force from the day given: before it, the entry that was in force then (none here).
    assert classifications_in_force([world.provider.id], day)[world.provider.id].id == entry.id
    assert world.provider.id not in classifications_in_force(
        [world.provider.id], day - timedelta(days=1)
    )
    # The registration today is later than the correction, so it is in force today: a later
    # entry wins, whoever wrote it.
    assert classifications_in_force([world.provider.id], today)[world.provider.id].vcse is True
    [email] = db.session.scalars(
        sa.select(Notification).where(Notification.template == "classification_corrected")
    ).all()
    assert email.to_email == world.admin.email
    assert "company limited by shares" in email.body and "/insight/classification" in email.body
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "classification.corrected")
    )
    assert event.after["reason"] == "Its accounts show it is a company limited by shares"


def test_a_correction_dated_in_the_future_is_refused_and_nothing_is_written(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        correct_classification(
            world.authority,
            world.provider,
            LARGE_COMPANY,
            effective_from=london_date() + timedelta(days=1),
            reason="Next year",
        )
    assert refused.value.errors["effective_from"] == [
        "The date the classification applies from must be today or in the past"
    ]
    db.session.rollback()
    assert entries(world.provider) == []
    assert count(Notification) == 0
    assert count(AuditEvent, AuditEvent.action.like("classification.%")) == 0


def test_a_correction_needs_a_reason_and_a_day_after_the_provider_registered(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        correct_classification(
            world.authority,
            world.provider,
            LARGE_COMPANY,
            effective_from=london_date() - timedelta(days=900),
            reason="  ",
        )
    assert set(refused.value.errors) == {"effective_from", "reason"}
    assert "when" in refused.value.errors["effective_from"][0]
    assert entries(world.provider) == []


def test_only_the_authority_corrects(world):
    for actor in (world.admin, world.other):
        with pytest.raises(NotFound):
            correct_classification(
                actor,
                world.provider,
                LARGE_COMPANY,
                effective_from=london_date(),
                reason="Mine",
            )
    assert entries(world.provider) == []


def test_a_registered_charity_without_a_number_is_asked_for_it_and_it_is_recorded(world):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, charity_number=None)
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    with pytest.raises(BusinessRuleViolation) as refused:
        confirm_classification(admin, provider, SMALL_CHARITY)
    assert "charity_number" in refused.value.errors
    answers = ClassificationAnswers("registered_charity", "under_10", "up_to_2m", "sc 045678")
    confirm_classification(admin, provider, answers)
    assert provider.charity_number == "SC045678"


def test_the_reminder_is_sent_once_when_confirmation_falls_due(world):
    record_at_registration(world.admin, world.provider, SMALL_CHARITY)
    unclassified = world.other.organisations[0]
    commit()
    today = london_date()
    # Not due yet: only the provider that has never been classified is reminded.
    assert send_confirmation_reminders(today + timedelta(days=364)) == 1
    commit()
    reminders = sa.select(Notification).where(
        Notification.template == "classification_confirmation_due"
    )
    assert [n.to_email for n in db.session.scalars(reminders)] == [world.other.email]
    assert unclassified.id
    # Due twelve months on: the provider's administrators (not its editors), once.
    assert send_confirmation_reminders(today.replace(year=today.year + 1)) == 1
    commit()
    assert send_confirmation_reminders(today.replace(year=today.year + 1)) == 0
    assert send_confirmation_reminders(today + timedelta(days=400)) == 0
    commit()
    sent = [n.to_email for n in db.session.scalars(reminders)]
    assert sent == [world.other.email, world.admin.email]
    # Confirmed again: due a year later, and reminded again then.
    with frozen_at(datetime.now(LONDON) + timedelta(days=400)):
        confirm_classification(world.admin, world.provider)
        commit()
    later = today + timedelta(days=400 + 366)
    assert send_confirmation_reminders(later) == 1
    assert send_confirmation_reminders(later) == 0


def test_the_band_labels_name_the_sme_thresholds():
    assert StaffBand.FROM_250.label == "250 or more"
    assert TurnoverBand.OVER_44M.label == "More than £44 million"
