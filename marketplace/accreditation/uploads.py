"""Evidence uploads: type checked by content, size limited, stored outside the web root.

Files are stored under a random name in ``EVIDENCE_DIR`` (by default ``<instance>/evidence``); the
name the provider gave is kept only as a label, reduced to its base name.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import unicodedata
import zipfile
from datetime import datetime
from typing import BinaryIO

from flask import Response, abort, current_app, send_file

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.permissions import has_role
from marketplace.accreditation.models import FILE_NAME_MAX, MAX_UPLOAD_BYTES, EvidenceFile
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db, on_rollback
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied

ALLOWED_DESCRIPTION = "a PDF, PNG, JPEG, DOCX, XLSX or ODT file"
PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"

# Signatures of programs: Windows PE (MZ), ELF, Mach-O, shell scripts, Java class files.
EXECUTABLE_SIGNATURES = (
    b"MZ",
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"#!",
)


def evidence_dir() -> str:
    """The directory evidence is stored in, created if needed (outside the web root)."""
    path = current_app.config.get("EVIDENCE_DIR") or os.path.join(
        current_app.config["INSTANCE_DIR"], "evidence"
    )
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def clean_file_name(filename: str | None) -> str:
    """The base name only: no directories, no control characters, at most 255 characters."""
    name = (filename or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    name = name.lstrip(".").strip()
    if not name:
        name = "evidence"
    if len(name) > FILE_NAME_MAX:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: FILE_NAME_MAX - len(extension) - 1] + "." + extension
        else:
            name = name[:FILE_NAME_MAX]
    return name


def _zip_type(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if any(name.lower().endswith("vbaproject.bin") for name in names):
                raise BusinessRuleViolation(
                    {"file": ["The selected file contains macros. Save it without macros"]}
                )
            if "mimetype" in names:
                with archive.open("mimetype") as entry:
                    if entry.read(100).strip() == ODT.encode():
                        return ODT
            if "[Content_Types].xml" in names and "word/document.xml" in names:
                return DOCX
            if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
                return XLSX
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, OSError, EOFError):
        return None
    return None


def detect_type(data: bytes) -> str:
    """The content type of ``data`` judged by its content, or a BusinessRuleViolation."""
    if data.startswith(EXECUTABLE_SIGNATURES):
        raise BusinessRuleViolation(
            {
                "file": [
                    f"The selected file is a program, which is not allowed. Upload {ALLOWED_DESCRIPTION}"
                ]
            }
        )
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"PK\x03\x04"):
        detected = _zip_type(data)
        if detected:
            return detected
    raise BusinessRuleViolation(
        {
            "file": [
                f"The selected file must be {ALLOWED_DESCRIPTION}. "
                "Its contents do not match any of these, whatever its name says"
            ]
        }
    )


def read_checked_upload(stream: BinaryIO) -> tuple[bytes, str]:
    """The uploaded file's bytes and content type, if it is within the size limit, not empty and
    one of the allowed types judged by its content; else a BusinessRuleViolation on ``file``.
    Every upload (evidence, a competition's documents) is checked by this one rule."""
    data = stream.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise BusinessRuleViolation(
            {
                "file": [
                    f"The selected file must be smaller than {MAX_UPLOAD_BYTES // 1024 // 1024} MB"
                ]
            }
        )
    if not data:
        raise BusinessRuleViolation({"file": ["The selected file is empty"]})
    return data, detect_type(data)


def store_checked_upload(directory: str, data: bytes) -> str:
    """Write checked bytes under a new random name in ``directory`` (outside the web root) and
    return the name; if the unit of work rolls back, the file goes too."""
    stored_name = secrets.token_hex(16)
    path = os.path.join(directory, stored_name)
    with open(path, "xb") as target:
        target.write(data)
    on_rollback(lambda: os.remove(path))
    return stored_name


def stored_file_download(
    directory: str, stored_name: str, content_type: str, download_name: str
) -> Response:
    """A stored file as an attachment that no cache keeps and no browser sniffs into another
    type (check who may see it first); 404 if the name is not ours or the file is gone."""
    # The stored name is ours (hex), so it cannot point outside the directory.
    if not stored_name or not all(ch in "0123456789abcdef" for ch in stored_name):
        abort(404)
    try:
        stream = open(os.path.join(directory, stored_name), "rb")  # noqa: SIM115 - streamed
    except OSError:
        abort(404)
    response = send_file(
        stream,
        mimetype=content_type,
        as_attachment=True,
        download_name=download_name,
        max_age=0,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def store_evidence(
    actor: User,
    organisation: Organisation,
    filename: str,
    stream: BinaryIO,
    *,
    at: datetime | None = None,
) -> EvidenceFile:
    """Check and store one uploaded file for ``organisation``."""
    if not has_role(actor, organisation, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR):
        raise PermissionDenied("Only the organisation's own people can upload its evidence")
    data, content_type = read_checked_upload(stream)
    stored_name = store_checked_upload(evidence_dir(), data)
    evidence = EvidenceFile(
        organisation_id=organisation.id,
        original_name=clean_file_name(filename),
        stored_name=stored_name,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by_id=actor.id,
        uploaded_at=at or utcnow(),
    )
    db.session.add(evidence)
    db.session.flush()
    audit.record(
        actor,
        "evidence.uploaded",
        evidence,
        object_type="evidence_file",
        organisation=organisation,
        after=audit.snapshot(evidence, ["original_name", "content_type", "size_bytes", "sha256"]),
    )
    return evidence


def evidence_path(evidence: EvidenceFile) -> str:
    # The stored name is ours (hex), so it cannot point outside the directory.
    if not all(ch in "0123456789abcdef" for ch in evidence.stored_name):
        raise ValueError("unexpected stored evidence name")
    return os.path.join(evidence_dir(), evidence.stored_name)


def evidence_download(evidence: EvidenceFile) -> Response:
    """The stored file as an attachment (``stored_file_download``; check who may see it
    first); 404 if the file is gone."""
    return stored_file_download(
        evidence_dir(), evidence.stored_name, evidence.content_type, evidence.original_name
    )


def open_evidence(evidence: EvidenceFile) -> BinaryIO:
    """Open a stored file for download (check ``can_view_evidence`` first)."""
    return open(evidence_path(evidence), "rb")  # noqa: SIM115 - the caller streams and closes it
