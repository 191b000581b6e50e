"""Evidence uploads: type by content, size limit, safe names, stored outside the web root."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest

from marketplace.accounts.models import Role
from marketplace.accreditation import uploads
from marketplace.accreditation.models import MAX_UPLOAD_BYTES
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from tests.accreditation.builders import make_provider
from tests.factories import make_member


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


DOCX = zipped({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
XLSX = zipped({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
ODT = zipped({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"})


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("policy.pdf", b"%PDF-1.7\n%%EOF\n", uploads.PDF),
        ("logo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, uploads.PNG),
        ("photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 20, uploads.JPEG),
        ("policy.docx", DOCX, uploads.DOCX),
        ("budget.xlsx", XLSX, uploads.XLSX),
        ("policy.odt", ODT, uploads.ODT),
        ("misnamed.txt", b"%PDF-1.4 real pdf", uploads.PDF),  # content decides, not the name
    ],
)
def test_allowed_types_are_stored_under_a_generated_name(app, name, data, content_type):
    organisation, admin = make_provider()
    evidence = uploads.store_evidence(admin, organisation, name, io.BytesIO(data))
    assert evidence.content_type == content_type
    assert evidence.original_name == name
    assert evidence.size_bytes == len(data)
    assert evidence.sha256 == hashlib.sha256(data).hexdigest()
    assert evidence.stored_name != name and len(evidence.stored_name) == 32
    path = uploads.evidence_path(evidence)
    assert os.path.dirname(path) == uploads.evidence_dir()
    assert not path.startswith(app.static_folder)
    with uploads.open_evidence(evidence) as stored:
        assert stored.read() == data


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("insurance.pdf", b"This is not really a PDF", "must be a PDF"),
        ("program.pdf", b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "program"),
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 50, "program"),
        ("script.pdf", b"#!/bin/sh\nrm -rf /\n", "program"),
        ("archive.docx", zipped({"other.txt": b"hello"}), "must be a PDF"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "must be a PDF"),
        (
            "macro.docm",
            zipped(
                {
                    "[Content_Types].xml": b"<Types/>",
                    "word/document.xml": b"<w:document/>",
                    "word/vbaProject.bin": b"\x00",
                }
            ),
            "macros",
        ),
        ("fake.odt", zipped({"mimetype": b"application/zip"}), "must be a PDF"),
        ("empty.pdf", b"", "empty"),
    ],
)
def test_bad_files_are_refused_with_a_clear_message(app, name, data, message):
    organisation, admin = make_provider()
    with pytest.raises(BusinessRuleViolation) as error:
        uploads.store_evidence(admin, organisation, name, io.BytesIO(data))
    assert message in error.value.errors["file"][0]


def test_files_over_10_mb_are_refused_reading_no_more_than_needed(app):
    organisation, admin = make_provider()

    class Stream(io.BytesIO):
        requested: list[int] = []

        def read(self, size=-1):
            self.requested.append(size)
            return super().read(size)

    stream = Stream(b"%PDF-" + b"x" * MAX_UPLOAD_BYTES)
    with pytest.raises(BusinessRuleViolation) as error:
        uploads.store_evidence(admin, organisation, "big.pdf", stream)
    assert "smaller than 10 MB" in error.value.errors["file"][0]
    assert stream.requested == [MAX_UPLOAD_BYTES + 1]
    exactly = uploads.store_evidence(
        admin, organisation, "max.pdf", io.BytesIO(b"%PDF-" + b"x" * (MAX_UPLOAD_BYTES - 5))
    )
    assert exactly.size_bytes == MAX_UPLOAD_BYTES


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.pdf", "evil.pdf"),
        ("/absolute/path/report.pdf", "report.pdf"),
        ("bad\x00name\r\n.pdf", "badname.pdf"),
        ("..", "evidence"),
        ("", "evidence"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_file_names_are_reduced_to_a_safe_base_name(app, given, kept):
    organisation, admin = make_provider()
    evidence = uploads.store_evidence(admin, organisation, given, io.BytesIO(b"%PDF-1.4"))
    assert evidence.original_name == kept
    assert len(evidence.original_name) <= 255


def test_only_the_organisations_people_can_upload(app):
    organisation, _ = make_provider()
    other_organisation, other_admin = make_provider()
    assessor = make_member(Role.ASSESSOR)
    for outsider in (other_admin, assessor):
        with pytest.raises(PermissionDenied):
            uploads.store_evidence(outsider, organisation, "x.pdf", io.BytesIO(b"%PDF-1.4"))


def test_evidence_dir_comes_from_config(app, tmp_path):
    configured = app.config.get("EVIDENCE_DIR")
    app.config["EVIDENCE_DIR"] = str(tmp_path / "elsewhere")
    try:
        organisation, admin = make_provider()
        evidence = uploads.store_evidence(admin, organisation, "x.pdf", io.BytesIO(b"%PDF-1.4"))
        assert os.path.exists(tmp_path / "elsewhere" / evidence.stored_name)
        app.config["EVIDENCE_DIR"] = None  # unset: falls back to <instance>/evidence
        assert uploads.evidence_dir() == os.path.join(app.config["INSTANCE_DIR"], "evidence")
    finally:
        app.config["EVIDENCE_DIR"] = configured


class TestFilesFollowTheTransaction:
    PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

    def test_a_rolled_back_upload_leaves_no_file(self, app):
        import io
        import os

        from marketplace.accreditation.uploads import evidence_path, store_evidence
        from marketplace.core.db import rollback
        from tests.accreditation.builders import make_provider

        organisation, admin = make_provider()
        evidence = store_evidence(admin, organisation, "insurance.pdf", io.BytesIO(self.PDF))
        path = evidence_path(evidence)
        assert os.path.exists(path)
        rollback()
        assert not os.path.exists(path)

    def test_a_committed_upload_stays(self, app):
        import io
        import os

        from marketplace.accreditation.uploads import evidence_path, store_evidence
        from marketplace.core.db import commit, rollback
        from tests.accreditation.builders import make_provider

        organisation, admin = make_provider()
        evidence = store_evidence(admin, organisation, "insurance.pdf", io.BytesIO(self.PDF))
        commit()
        path = evidence_path(evidence)
        rollback()  # a later unit of work failing does not touch what was committed
        assert os.path.exists(path)
