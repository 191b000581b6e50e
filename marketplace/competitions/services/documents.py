"""A competition's documents: checked and stored as evidence is (``accreditation.uploads``),
in their own folder outside the web root; added and removed while it is a draft."""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from typing import BinaryIO

from flask import Response

from marketplace.accounts.models import User
from marketplace.accreditation.uploads import (
    clean_file_name,
    evidence_dir,
    read_checked_upload,
    store_checked_upload,
    stored_file_download,
)
from marketplace.competitions.models import Competition, CompetitionDocument
from marketplace.competitions.services.setup import _require_draft, _touch
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound

MAX_DOCUMENTS = 20


def documents_dir() -> str:
    """Competition documents live beside evidence, in their own folder (outside the web root)."""
    path = os.path.join(evidence_dir(), "competitions")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def add_document(
    actor: User,
    competition: Competition,
    filename: str,
    stream: BinaryIO,
    *,
    now: datetime | None = None,
) -> CompetitionDocument:
    """Check (by content and size) and store one document of a draft competition."""
    _require_draft(actor, competition)
    if len(competition.documents) >= MAX_DOCUMENTS:
        raise BusinessRuleViolation(
            {"file": [f"A competition can have at most {MAX_DOCUMENTS} documents"]}
        )
    data, content_type = read_checked_upload(stream)
    stored_name = store_checked_upload(documents_dir(), data)
    document = CompetitionDocument(
        original_name=clean_file_name(filename),
        stored_name=stored_name,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by_id=actor.id,
        uploaded_at=now or utcnow(),
    )
    competition.documents.append(document)
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.document_added",
        competition,
        after=audit.snapshot(document, ["id", "original_name", "content_type", "size_bytes"]),
    )
    return document


def remove_document(actor: User, competition: Competition, document_id: object) -> None:
    """Remove a document from a draft (the stored file stays until the draft is gone: the
    removal is audited and could be rolled back)."""
    _require_draft(actor, competition)
    document = next((d for d in competition.documents if d.id == document_id), None)
    if document is None:
        raise NotFound("Document not found")
    competition.documents.remove(document)
    _touch(competition)
    db.session.flush()
    audit.record(
        actor,
        "competition.document_removed",
        competition,
        before=audit.snapshot(document, ["id", "original_name", "sha256"]),
    )


def document_download(document: CompetitionDocument) -> Response:
    """The stored document as an attachment (check ``can_read_documents`` first)."""
    return stored_file_download(
        documents_dir(), document.stored_name, document.content_type, document.original_name
    )
