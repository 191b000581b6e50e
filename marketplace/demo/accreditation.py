"""The demo's dynamic purchasing system: a live arrangement with its lots and criteria, and the
builder of back-dated applications that ``demo.applications`` uses for members and applicants.

Rows are built directly (the services work from today's date and would refuse back-dated
admissions); each change has its audit event, and every row meets the CHECK constraints.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import (
    Answer,
    AnswerOutcome,
    Application,
    ApplicationArea,
    ApplicationLot,
    ApplicationStatus,
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    Criterion,
    EvidenceFile,
    LegalRegime,
    QuestionType,
)
from marketplace.accreditation.uploads import evidence_dir
from marketplace.core import audit
from marketplace.core.clock import add_working_days, working_days_between
from marketplace.core.db import db
from marketplace.reference.models import ProbationRegion, ServiceCategory

DEMO_ARRANGEMENT_REFERENCE = "HMPPS-DPS-2026"
DEMO_ARRANGEMENT_REGIONS = ("A", "B", "C", "D", "E", "G", "J", "L")
DEMO_LOTS = {
    "ACC": "Help to find and keep a home: tenancy support, move-on and supported housing.",
    "ETE": "Help into education, training and work, and to stay in work.",
    "FBD": "Advice on money, benefits and debt, and help to open a bank account.",
    "DNR": "Recovery from drug and alcohol dependency, with peer support.",
    "WOM": "Gender-specific, trauma-informed services for women on probation.",
    "EWB": "Support for emotional wellbeing and mental health.",
}
# Which lots (category codes) and regions each admitted demo provider holds.
DEMO_ADMISSIONS = {
    "northern-lights": (("ACC", "FBD"), ("B", "L")),
    "second-chances": (("ETE",), ("L", "B")),
    "harbour-debt": (("FBD",), ("D",)),
    "pathways": (("DNR", "EWB"), ("C",)),
    "womens-circle": (("WOM", "EWB"), ("J",)),
    "open-door": (("ETE", "EWB"), ("G",)),
    "bridgeway": (("ACC",), ("B",)),
    "clean-slate": (("ETE",), ("J", "E")),
    "rebuild-cymru": (("ACC", "DNR", "FBD"), ("D",)),
    "anchor": (("ACC", "DNR"), ("A", "C")),
    "steps-forward": (("EWB",), ("E",)),
    "lifeline-debt": (("FBD",), ("L", "B", "C")),
    "caledonian": (("DNR",), ("A",)),
    "ascend": (("ETE",), ("J", "E", "G")),
    "keystone": (("ACC",), ("E",)),
}
DEMO_PDF = b"%PDF-1.4\n% demo evidence\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)


def live_arrangement(authority_admin: User, regions: dict[str, ProbationRegion]) -> Arrangement:
    """The live arrangement in the demo regions, with a lot per demo category."""
    categories = {c.code: c for c in db.session.scalars(sa.select(ServiceCategory))}
    arrangement = Arrangement(
        reference=DEMO_ARRANGEMENT_REFERENCE,
        name="Rehabilitation Services Dynamic Purchasing System",
        description=(
            "Rehabilitation services for people on probation in England and Wales, bought by "
            "probation regions, Police and Crime Commissioners and other public bodies. Any "
            "provider that meets the criteria of a lot can join at any time."
        ),
        legal_regime=LegalRegime.PCR2015_DPS,
        status=ArrangementStatus.LIVE,
        valid_from=date(2026, 4, 1),
        valid_to=date(2030, 3, 31),
        direct_award_limit_pence=3_000_000,
        created_by_id=authority_admin.id,
        went_live_at=datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
    )
    arrangement.regions = [regions[code] for code in DEMO_ARRANGEMENT_REGIONS]
    arrangement.lots = [
        ArrangementLot(category=categories[code], description=text)
        for code, text in DEMO_LOTS.items()
    ]
    db.session.add(arrangement)
    db.session.flush()
    audit.record(
        authority_admin,
        "arrangement.created",
        arrangement,
        after={"reference": arrangement.reference, "source": "demo"},
    )
    audit.record(
        authority_admin,
        "arrangement.went_live",
        arrangement,
        before={"status": "pending"},
        after={"status": "live", "source": "demo"},
    )
    return arrangement


def _demo_criteria(lot) -> list:
    name = lot.category.name.lower()
    criteria = [
        Criterion(
            lot=lot,
            position=1,
            question="Do you have a safeguarding policy that your board has approved in the last "
            "12 months?",
            type=QuestionType.YES_NO,
            mandatory=True,
            pass_fail=True,
            pass_answer=True,
        ),
        Criterion(
            lot=lot,
            position=2,
            question=f"Describe the {name} services you offer and who delivers them.",
            type=QuestionType.TEXT,
            mandatory=True,
            pass_fail=False,
        ),
        Criterion(
            lot=lot,
            position=3,
            question="Upload your public liability insurance certificate (at least £5 million).",
            type=QuestionType.FILE,
            mandatory=True,
            pass_fail=True,
            evidence_expires=True,
        ),
    ]
    db.session.add_all(criteria)
    return criteria


def demo_evidence(organisation: Organisation, uploaded_at) -> EvidenceFile:
    """A stored copy of the demo PDF, owned by ``organisation``."""
    stored_name = secrets.token_hex(16)
    os.makedirs(evidence_dir(), exist_ok=True)
    with open(os.path.join(evidence_dir(), stored_name), "xb") as target:
        target.write(DEMO_PDF)
    evidence = EvidenceFile(
        organisation_id=organisation.id,
        original_name="public-liability-insurance.pdf",
        stored_name=stored_name,
        content_type="application/pdf",
        size_bytes=len(DEMO_PDF),
        sha256=hashlib.sha256(DEMO_PDF).hexdigest(),
        uploaded_at=uploaded_at,
    )
    db.session.add(evidence)
    db.session.flush()
    return evidence


@dataclass
class ApplicationBuilder:
    """Makes back-dated applications to the demo arrangement, each with its answers, marks and
    audit event; references are numbered in the order the applications are made."""

    arrangement: Arrangement
    authority_admin: User
    assessor: User
    providers: dict[str, Organisation]
    regions: dict[str, ProbationRegion]
    provider_admins: dict[str, User]
    today: date
    lots: dict = field(default_factory=dict)
    criteria: dict = field(default_factory=dict)
    numbers: object = field(default_factory=lambda: iter(range(1, 10_000)))
    counts: dict = field(default_factory=lambda: {"memberships": 0, "applications": 0})

    def __post_init__(self) -> None:
        self.lots = {lot.category.code: lot for lot in self.arrangement.lots}
        self.criteria = {code: _demo_criteria(lot) for code, lot in self.lots.items()}
        db.session.flush()

    def submitted_on_for(self, days_left: int) -> date:
        """A working day of submission that leaves ``days_left`` working days on the clock."""
        day = self.today
        while working_days_between(self.today, add_working_days(day, 10)) > days_left:
            day -= timedelta(days=1)
        return day

    def application(
        self, key, codes, region_codes, status, *, submitted_on=None, marks="pass", **extra
    ) -> Application:
        organisation = self.providers[key]
        admin_user = self.provider_admins.get(key)
        created_on = (submitted_on or self.today) - timedelta(days=5)
        row = Application(
            reference=f"APP-{created_on.year}-{next(self.numbers):06d}",
            arrangement_id=self.arrangement.id,
            organisation_id=organisation.id,
            status=status,
            created_by_id=admin_user.id if admin_user else None,
            partners=extra.pop("partners", ""),
        )
        if submitted_on is not None:
            row.declared_at = at(submitted_on, 9)
            row.submitted_at = at(submitted_on)
            row.submitted_by_id = admin_user.id if admin_user else None
            row.decision_due_on = add_working_days(submitted_on, 10)
        for name, value in extra.items():
            setattr(row, name, value)
        row.lots = [ApplicationLot(lot=self.lots[code]) for code in codes]
        row.areas = [ApplicationArea(region=self.regions[code]) for code in region_codes]
        db.session.add(row)
        db.session.flush()
        for code in codes:
            for criterion in self.criteria[code]:
                db.session.add(self._answer(row, organisation, code, criterion, created_on, marks))
        db.session.flush()
        audit.record(
            admin_user or self.authority_admin,
            f"application.{status.value}",
            row,
            after={"reference": row.reference, "status": status.value, "source": "demo"},
        )
        self.counts["applications"] += 1
        return row

    def _answer(self, row, organisation, code, criterion, created_on, marks) -> Answer:
        answer = Answer(application_id=row.id, criterion_id=criterion.id)
        if criterion.type == QuestionType.YES_NO:
            answer.value_bool = True
        elif criterion.type == QuestionType.TEXT:
            answer.value_text = (
                f"{organisation.name} has delivered {self.lots[code].category.name.lower()} "
                "services for people on probation since 2015, with paid staff and "
                "trained volunteers, many with lived experience."
            )
        else:
            answer.file_id = demo_evidence(organisation, at(created_on)).id
            answer.evidence_expires_on = date(2027, 3, 31)
        if marks and criterion.pass_fail and row.decided_at is not None:
            failed = marks == "fail" and criterion.type == QuestionType.YES_NO
            answer.outcome = AnswerOutcome.FAIL if failed else AnswerOutcome.PASS
            answer.assessor_comment = (
                "The policy was last approved in 2019; it must be reviewed and approved again."
                if failed
                else ""
            )
            answer.assessed_at = row.decided_at
            answer.assessed_by_id = self.assessor.id
        return answer

    def admitted_insurance(self, key: str) -> list[Answer]:
        """The provider's admitted answers whose evidence expires (its insurance certificate)."""
        return list(
            db.session.scalars(
                sa.select(Answer)
                .join(Application, Application.id == Answer.application_id)
                .where(
                    Application.organisation_id == self.providers[key].id,
                    Application.status == ApplicationStatus.ADMITTED,
                    Answer.evidence_expires_on.is_not(None),
                )
                .order_by(Answer.id)
            )
        )
