"""`flask demo load` and `flask demo users`."""

from __future__ import annotations

import json

import pyotp
import pytest
import sqlalchemy as sa

from marketplace.accounts.models import (
    CHARITY_NUMBER_PATTERN,
    COMPANY_NUMBER_PATTERN,
    PROVIDER_TYPES,
    TWO_FACTOR_REQUIRED_ROLES,
    Membership,
    Organisation,
    OrganisationType,
    Role,
    User,
)
from marketplace.accounts.security import (
    hash_password,
    password_problems,
    verify_password,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.demo import organisations as demo_organisations
from marketplace.demo.people import DEMO_EMAIL_DOMAIN, DEMO_PASSWORD, DEMO_TOTP_SECRET, USERS

_demo_password_hash: list[str] = []


@pytest.fixture(autouse=True)
def _hash_the_demo_password_once(monkeypatch):
    """Argon2 is slow on purpose; the loader hashes one password, so tests reuse one real hash."""

    def cached_hash(password: str) -> str:
        assert password == DEMO_PASSWORD
        if not _demo_password_hash:
            _demo_password_hash.append(hash_password(password))
        return _demo_password_hash[0]

    monkeypatch.setattr(demo_organisations, "hash_password", cached_hash)


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def loaded(cli):
    result = cli("demo", "load")
    assert result.exit_code == 0, result.output
    return result


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def organisations_of_type(*types: OrganisationType) -> list[Organisation]:
    return list(db.session.scalars(sa.select(Organisation).where(Organisation.type.in_(types))))


def test_load_creates_the_world_and_says_so(loaded):
    assert "Loaded the demo world" in loaded.output
    assert DEMO_PASSWORD in loaded.output
    authority = organisations_of_type(OrganisationType.AUTHORITY)
    assert [o.name for o in authority] == ["HMPPS Commissioning"]
    assert len(organisations_of_type(OrganisationType.PROBATION_REGION)) >= 4
    assert len(organisations_of_type(OrganisationType.PCC)) >= 3
    assert organisations_of_type(OrganisationType.PRISON, OrganisationType.OTHER_COMMISSIONER)
    providers = organisations_of_type(*PROVIDER_TYPES)
    assert len(providers) >= 20
    vcse = [p for p in providers if p.type == OrganisationType.PROVIDER_VCSE]
    assert len(vcse) > len(providers) / 2
    assert len([p for p in providers if p.type == OrganisationType.PROVIDER_PRIVATE]) >= 2
    assert len([p for p in providers if p.type == OrganisationType.PROVIDER_PUBLIC]) >= 1


def test_load_twice_changes_nothing_the_second_time(cli, loaded):
    before = {model: count(model) for model in (Organisation, User, Membership, AuditEvent)}
    again = cli("demo", "load")
    assert again.exit_code == 0
    assert "already loaded" in again.output
    assert {model: count(model) for model in (Organisation, User, Membership, AuditEvent)} == before


def test_organisations_have_valid_numbers_and_their_reference_links(loaded):
    providers = organisations_of_type(*PROVIDER_TYPES)
    assert len({p.region_id for p in providers}) >= 6  # spread across regions
    charity_numbers = [p.charity_number for p in providers if p.charity_number]
    assert all(CHARITY_NUMBER_PATTERN.match(number) for number in charity_numbers)
    assert any(number.startswith("SC") for number in charity_numbers)
    assert any(number.isdigit() for number in charity_numbers)
    for private in (p for p in providers if p.type == OrganisationType.PROVIDER_PRIVATE):
        assert COMPANY_NUMBER_PATTERN.match(private.companies_house_number)
    for vcse in (p for p in providers if p.type == OrganisationType.PROVIDER_VCSE):
        assert vcse.charity_number
    for region in organisations_of_type(OrganisationType.PROBATION_REGION):
        assert region.region is not None
        assert region.region.name in region.name
    for pcc in organisations_of_type(OrganisationType.PCC):
        assert pcc.pcc_area is not None
        assert pcc.region_id == pcc.pcc_area.region_id


def test_every_role_has_a_confirmed_demo_account_with_the_documented_password(loaded):
    users = list(db.session.scalars(sa.select(User)))
    assert {role for user in users for role in user.roles} == set(Role)
    assert all(user.email.endswith(f"@{DEMO_EMAIL_DOMAIN}") for user in users)
    assert all(user.email_confirmed_at is not None and user.active for user in users)
    assert verify_password(users[0].password_hash, DEMO_PASSWORD)
    assert len({user.password_hash for user in users}) == 1


def test_the_demo_password_passes_our_own_password_rules_for_every_account():
    assert len(DEMO_PASSWORD) >= 10
    for spec in USERS:
        assert (
            password_problems(DEMO_PASSWORD, min_length=10, email=spec.email, name=spec.name) == []
        )


def test_roles_that_need_two_factor_have_the_documented_secret(loaded):
    users = list(db.session.scalars(sa.select(User)))
    for user in users:
        if user.roles & TWO_FACTOR_REQUIRED_ROLES:
            assert user.two_factor_enabled
            assert user.totp_secret == DEMO_TOTP_SECRET
        else:
            assert not user.two_factor_enabled
    assert len(pyotp.TOTP(DEMO_TOTP_SECRET).now()) == 6  # valid base32


def test_the_roles_people_need_to_try_the_service(loaded):
    def roles_by_type(user: User) -> set[tuple[OrganisationType, Role]]:
        return {(m.organisation.type, m.role) for m in user.memberships}

    pairs = set().union(*(roles_by_type(u) for u in db.session.scalars(sa.select(User))))
    assert (OrganisationType.PROBATION_REGION, Role.BUYER) in pairs
    assert (OrganisationType.PROBATION_REGION, Role.APPROVER) in pairs
    assert (OrganisationType.PCC, Role.BUYER) in pairs
    assert (OrganisationType.PCC, Role.APPROVER) in pairs
    assert (OrganisationType.AUTHORITY, Role.AUTHORITY_ADMIN) in pairs
    assert (OrganisationType.AUTHORITY, Role.ASSESSOR) in pairs
    provider_admins = db.session.scalars(
        sa.select(Membership.organisation_id).where(Membership.role == Role.PROVIDER_ADMIN)
    ).all()
    assert len(set(provider_admins)) >= 5
    editor_orgs = set(
        db.session.scalars(
            sa.select(Membership.organisation_id).where(Membership.role == Role.PROVIDER_EDITOR)
        )
    )
    assert editor_orgs & set(provider_admins)  # an admin and an editor in the same provider
    assert any(len(u.organisations) > 1 for u in db.session.scalars(sa.select(User)))
    # Every role a person holds fits the kind of organisation.
    for membership in db.session.scalars(sa.select(Membership)):
        assert membership.role in membership.organisation.allowed_roles


def test_what_was_created_is_audited(loaded):
    organisation_ids = set(db.session.scalars(sa.select(Organisation.id)))
    audited = set(
        db.session.scalars(
            sa.select(AuditEvent.object_id).where(AuditEvent.action == "organisation.created")
        )
    )
    assert {str(i) for i in organisation_ids} == audited
    assert count(Membership) == db.session.scalar(
        sa.select(sa.func.count()).where(AuditEvent.action == "membership.created")
    )
    assert db.session.scalar(
        sa.select(sa.func.count()).where(AuditEvent.action == "user.created")
    ) == count(User)


def test_users_json_lists_every_role(cli, loaded):
    result = cli("demo", "users", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)  # nothing but JSON on stdout
    assert isinstance(rows, list)
    assert {row["role"] for row in rows} == {role.value for role in Role}
    for row in rows:
        assert {"email", "organisation", "organisation_type", "role"} <= set(row)
        assert row["email"].endswith(f"@{DEMO_EMAIL_DOMAIN}")
        assert OrganisationType(row["organisation_type"])
        assert row["password"] == DEMO_PASSWORD
        assert ("totp_secret" in row) == (Role(row["role"]) in TWO_FACTOR_REQUIRED_ROLES)
    memberships = count(Membership)
    assert len(rows) == memberships


def test_users_table_lists_sign_ins_password_and_two_factor_secret(cli, loaded):
    result = cli("demo", "users")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].split() == [
        "Email",
        "Organisation",
        "Organisation",
        "type",
        "Role",
    ]
    for email in (
        "buyer@demo.example",
        "approver@demo.example",
        "provider.admin@demo.example",
        "provider.editor@demo.example",
        "assessor@demo.example",
        "authority.admin@demo.example",
        "pcc.buyer@demo.example",
        "pcc.approver@demo.example",
    ):
        assert email in result.output
    assert DEMO_PASSWORD in result.output
    assert DEMO_TOTP_SECRET in result.output


def test_users_before_load_says_what_to_do(app):
    result = app.test_cli_runner().invoke(args=["demo", "users", "--json"])
    assert result.exit_code != 0
    assert "flask demo load" in result.output
    assert result.stdout == ""


def test_load_refuses_to_run_in_production(app, monkeypatch):
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    result = app.test_cli_runner().invoke(args=["demo", "load"])
    assert result.exit_code != 0
    assert "never loaded in production" in result.output
    assert count(User) == 0


def test_demo_has_a_live_arrangement_with_members_and_applications_in_every_state(loaded):
    from datetime import date

    from marketplace.accreditation.models import (
        Application,
        ApplicationStatus,
        Arrangement,
        ArrangementStatus,
        LotMembership,
        MembershipStatus,
    )
    from marketplace.accreditation.queries_assessment import assessment_queue

    arrangement = db.session.scalar(sa.select(Arrangement))
    assert arrangement.status == ArrangementStatus.LIVE
    assert arrangement.legal_regime == "pcr2015_dps"
    assert arrangement.direct_award_limit_pence == 3_000_000
    assert (arrangement.valid_from, arrangement.valid_to) == (date(2026, 4, 1), date(2030, 3, 31))
    assert len(arrangement.lots) >= 5
    assert len(arrangement.regions) >= 3
    assert all(len(lot.criteria) >= 2 for lot in arrangement.lots)

    members = list(db.session.scalars(sa.select(LotMembership)))
    assert len({m.organisation_id for m in members if m.status == MembershipStatus.ACTIVE}) >= 10
    assert any(m.status == MembershipStatus.SUSPENDED for m in members)
    assert all(m.admitted_on.year == 2026 for m in members)

    statuses = set(db.session.scalars(sa.select(Application.status)))
    assert statuses == set(ApplicationStatus)
    queue = assessment_queue()
    assert any(entry.breached for entry in queue)
    assert any(0 <= entry.days_left <= 2 for entry in queue)
    rejected = db.session.scalar(
        sa.select(Application).where(Application.status == ApplicationStatus.REJECTED)
    )
    assert all(application_lot.feedback for application_lot in rejected.lots)
    assert count(AuditEvent) > 0


def test_demo_has_budgets_and_call_offs_in_every_state_with_delivery(loaded):
    from marketplace.accounts.models import Organisation
    from marketplace.orders.models import Budget, CallOff, CallOffFunder, CallOffStatus, Delivery

    commissioners = [
        o for o in db.session.scalars(sa.select(Organisation)) if o.type.is_commissioner
    ]
    budgeted = set(db.session.scalars(sa.select(Budget.organisation_id)))
    assert {o.id for o in commissioners} <= budgeted
    states = set(db.session.scalars(sa.select(CallOff.status)))
    # Draft is left at once by the service that places a call-off, so no call-off rests there.
    assert states == set(CallOffStatus) - {CallOffStatus.DRAFT}
    co_funded = db.session.scalars(
        sa.select(CallOffFunder.call_off_id).where(CallOffFunder.is_lead.is_(False))
    ).all()
    assert len(co_funded) >= 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Delivery)) >= 2
    # Every budget still adds up: nothing committed or spent below zero, nothing over.
    for budget in db.session.scalars(sa.select(Budget)):
        assert 0 <= budget.committed_pence + budget.spent_pence <= budget.allocated_pence


def test_demo_has_invoices_in_every_state_outcome_claims_and_payments_to_report(loaded):
    from marketplace.core.clock import london_date, utcnow
    from marketplace.invoices import queries
    from marketplace.invoices.models import CreditNote, Invoice, InvoiceKind, InvoiceStatus
    from marketplace.outcomes.models import OutcomeClaim

    invoices = db.session.scalars(sa.select(Invoice)).all()
    assert {i.status for i in invoices} == set(InvoiceStatus)
    assert {InvoiceKind.MONTHLY, InvoiceKind.COMPLETION, InvoiceKind.OUTCOME} <= {
        i.kind for i in invoices
    }
    today = london_date(utcnow())
    assert any(i.is_overdue(today) for i in invoices)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditNote)) >= 1
    claims = {c.status.value for c in db.session.scalars(sa.select(OutcomeClaim))}
    assert {"claimed", "verified", "rejected"} <= claims
    # The reports have something to show: invoices paid on time and late in the demo's months.
    paid = [i for i in invoices if i.status == InvoiceStatus.PAID]
    periods = {queries.half_year_of(i.paid_on) for i in paid}
    figures = [queries.payment_performance(period).total for period in periods]
    assert sum(f.paid_count for f in figures) == len(paid)
    assert sum(f.late_count for f in figures) >= 1 and sum(f.on_time_count for f in figures) >= 1
    # Numbers run without gaps per provider.
    for provider_id in {i.provider_id for i in invoices}:
        sequences = sorted(
            i.sequence for i in invoices if i.provider_id == provider_id and i.sequence
        )
        assert sequences == list(range(1, len(sequences) + 1))


def test_demo_load_leaves_the_spend_ledger_complete(loaded, cli):
    from marketplace.insight.models import Measure, SpendEntry, SpendStaleCallOff
    from marketplace.insight.services.ledger import check_ledger

    assert count(SpendStaleCallOff) == 0
    assert set(db.session.scalars(sa.select(SpendEntry.measure).distinct())) == set(Measure)
    assert check_ledger() == []
    result = cli("insight", "check-ledger")
    assert result.exit_code == 0 and "consistent" in result.output
