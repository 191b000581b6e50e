"""Reference data: the 12 probation regions, the 42 PCC areas and the service categories (lots)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.core.db import db

CODE_MAX = 40
NAME_MAX = 120


class ProbationRegion(db.Model):
    __tablename__ = "probation_regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(CODE_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))

    pcc_areas: Mapped[list[PccArea]] = relationship(
        back_populates="region", order_by="PccArea.name"
    )

    def __str__(self) -> str:
        return self.name


class PccArea(db.Model):
    __tablename__ = "pcc_areas"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(CODE_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    region_id: Mapped[int] = mapped_column(sa.ForeignKey("probation_regions.id"), index=True)

    region: Mapped[ProbationRegion] = relationship(back_populates="pcc_areas")

    def __str__(self) -> str:
        return self.name


class ServiceCategory(db.Model):
    """A lot of the arrangement; ``is_cohort`` marks the cohort-specific categories."""

    __tablename__ = "service_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(CODE_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    is_cohort: Mapped[bool] = mapped_column(default=False)

    def __str__(self) -> str:
        return self.name
