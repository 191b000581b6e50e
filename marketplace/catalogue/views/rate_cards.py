"""Rate card pages: a provider's rate card (public, and as CSV, XLSX, JSON; today or a past date),
and importing a rate card from CSV or XLSX with a preview before anything is written.

The uploaded rows wait between the preview and the confirmation in a file under the instance
folder named by a random token held in the person's session; the confirmation checks every row
again (the data may have changed) and writes all or nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from flask_wtf.file import FileField
from govuk_frontend_wtf.wtforms_widgets import GovFileInput
from sqlalchemy.exc import IntegrityError
from wtforms import HiddenField
from wtforms.validators import ValidationError

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.forms.fields import BaseForm, submit_field
from marketplace.accounts.models import Role
from marketplace.accounts.queries import Page, page_number
from marketplace.accounts.session import current_organisation
from marketplace.catalogue import rate_cards
from marketplace.catalogue.imports.columns import (
    CLEAR_MARKER,
    COLUMNS,
    DOWNLOAD_COLUMNS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_ROWS,
    READING_RULES,
    ImportRefused,
    ImportResult,
    RowError,
)
from marketplace.catalogue.imports.read import read_rate_card_file
from marketplace.catalogue.imports.template import template_csv, template_xlsx
from marketplace.catalogue.imports.write import import_rows
from marketplace.catalogue.permissions import can_manage_listings
from marketplace.catalogue.views import bp
from marketplace.core.db import commit, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors

PENDING_KEY = "rate_card_import"
DONE_KEY = "rate_card_import_done"
CHANGES_PER_PAGE = 100


class ImportForm(BaseForm):
    file = FileField(
        "Upload your rate card",
        description=f"A CSV file or an Excel workbook (XLSX), up to "
        f"{MAX_IMPORT_BYTES // 1024 // 1024} MB, with the template's columns.",
        widget=GovFileInput(),
    )
    submit = submit_field("Check the file")

    def validate_file(self, field) -> None:
        if not getattr(field.data, "filename", None):
            raise ValidationError("Select a CSV or XLSX file to upload")


class ConfirmImportForm(BaseForm):
    token = HiddenField()
    submit = submit_field("Import these changes")


# ---------------------------------------------------------------------------------------------
# The rate card


def _card_or_error():
    organisation = rate_cards.get_provider(request.view_args["provider_id"])
    if organisation is None:
        abort(404)
    try:
        on = rate_cards.parse_on(request.args.get("on"))
    except rate_cards.BadRateCardDate as error:
        abort(400, description=str(error))
    return rate_cards.rate_card(organisation, on)


@bp.get("/providers/<int:provider_id>/rate-card")
def rate_card(provider_id: int):
    card = _card_or_error()
    return render_template(
        "catalogue/rate_cards/rate_card.html",
        card=card,
        can_import=can_manage_listings(current_user, card.organisation),
        on_arg=card.on.isoformat() if card.historical else None,
    )


@bp.get("/providers/<int:provider_id>/rate-card.csv")
def rate_card_csv(provider_id: int):
    card = _card_or_error()
    return Response(
        rate_cards.to_csv(card),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{rate_cards.file_stem(card)}.csv"'},
    )


@bp.get("/providers/<int:provider_id>/rate-card.xlsx")
def rate_card_xlsx(provider_id: int):
    card = _card_or_error()
    return Response(
        rate_cards.to_xlsx(card),
        mimetype=rate_cards.XLSX_MIMETYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{rate_cards.file_stem(card)}.xlsx"'
        },
    )


@bp.get("/providers/<int:provider_id>/rate-card.json")
def rate_card_json(provider_id: int):
    card = _card_or_error()
    return Response(rate_cards.to_json(card), mimetype="application/json")


# ---------------------------------------------------------------------------------------------
# Import


def _provider_or_404():
    organisation = current_organisation()
    if not can_manage_listings(current_user, organisation):
        abort(404)
    return organisation


def _pending_dir() -> str:
    path = os.path.join(current_app.config["INSTANCE_DIR"], "rate-card-imports")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def _pending_path(token: str) -> str:
    if not token or len(token) != 32 or not all(ch in "0123456789abcdef" for ch in token):
        abort(404)
    return os.path.join(_pending_dir(), token + ".json")


def _forget(key: str) -> None:
    pending = session.pop(key, None)
    if pending:
        with contextlib.suppress(OSError):
            os.remove(_pending_path(pending["token"]))


def _forget_pending() -> None:
    _forget(PENDING_KEY)


def _save(key: str, organisation_id: int, data: dict, token: str | None = None) -> str:
    """Keep ``data`` in a file named by a token held in the person's session under ``key``."""
    if token is None:
        _forget(key)
        token = secrets.token_hex(16)
    path = _pending_path(token)
    with open(path + ".tmp", "w", encoding="utf-8") as target:
        json.dump(data, target, ensure_ascii=False, default=str)
    os.replace(path + ".tmp", path)
    session[key] = {"token": token, "organisation_id": organisation_id}
    return token


def _load(key: str, organisation) -> tuple[str, dict] | None:
    """The kept data of this person's import for ``organisation`` (None if there is none)."""
    kept = session.get(key)
    if not kept or kept.get("organisation_id") != organisation.id:
        return None
    try:
        with open(_pending_path(kept["token"]), encoding="utf-8") as source:
            return kept["token"], json.load(source)
    except (OSError, ValueError):
        session.pop(key, None)
        return None


def _expired():
    flash("That import has expired or was already done. Upload the file again.", "info")
    return redirect(url_for("catalogue.import_rate_card"))


def _changes_pages(result: ImportResult, endpoint: str) -> dict:
    """One page of the changes and one of the new listings (each with its own page number)."""
    changes_page = page_number(request.args.get("page"))
    new_page = page_number(request.args.get("new_page"))

    def page_of(items: list, number: int, arg: str, other: dict) -> Page:
        pages = max(1, -(-len(items) // CHANGES_PER_PAGE))
        number = min(number, pages)
        start = (number - 1) * CHANGES_PER_PAGE

        def url_for_page(n: int) -> str:
            return url_for(endpoint, **{**other, arg: n}, _anchor=arg.replace("_", "-"))

        return Page(
            items=items[start : start + CHANGES_PER_PAGE],
            page=number,
            per_page=CHANGES_PER_PAGE,
            total=len(items),
            url_for_page=url_for_page,
        )

    changes = page_of(result.changes, changes_page, "page", {"new_page": new_page})
    new = page_of(result.new_listings, new_page, "new_page", {"page": changes.page})
    return {"changes_page": changes, "new_page": new}


@bp.route("/rate-card/import", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def import_rate_card():
    organisation = _provider_or_404()
    form = ImportForm()
    problems: list[RowError] = []
    if form.validate_on_submit():
        upload = form.file.data
        try:
            rows = read_rate_card_file(upload.filename, upload.stream)
            result = import_rows(current_user, organisation, rows, dry_run=True)
        except ImportRefused as error:
            rollback()
            problems = error.problems
            if problems:
                apply_errors(
                    form,
                    BusinessRuleViolation(
                        {
                            "file": [
                                f"The file has {len(problems):,} "
                                f"{'error' if len(problems) == 1 else 'errors'}, listed below "
                                "with their row and column. Nothing was imported: correct them "
                                "and upload the file again"
                            ]
                        }
                    ),
                )
            else:
                apply_errors(form, error)
        else:
            rollback()  # the preview wrote nothing; leave no transaction open
            _save(PENDING_KEY, organisation.id, _pending_data(rows, result))
            return redirect(url_for("catalogue.check_import"))
    return render_template(
        "catalogue/rate_cards/import.html",
        form=form,
        problems=problems,
        organisation=organisation,
    )


def _pending_data(rows: list, result: ImportResult) -> dict:
    return {"rows": rows, "result": result.to_json(), "fingerprint": result.fingerprint()}


@bp.get("/rate-card/import/check")
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def check_import():
    """What the checked file would change, page by page, and the button that imports it."""
    organisation = _provider_or_404()
    pending = _load(PENDING_KEY, organisation)
    if pending is None:
        return _expired()
    token, data = pending
    result = ImportResult.from_json(data["result"])
    return render_template(
        "catalogue/rate_cards/preview.html",
        result=result,
        form=ConfirmImportForm(token=token),
        organisation=organisation,
        **_changes_pages(result, "catalogue.check_import"),
    )


@bp.post("/rate-card/import/confirm")
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def confirm_import():
    organisation = _provider_or_404()
    form = ConfirmImportForm()
    pending = _load(PENDING_KEY, organisation)
    if not form.validate_on_submit() or pending is None or pending[0] != form.token.data:
        return _expired()
    token, data = pending
    import_form = ImportForm(formdata=None)
    try:
        result = import_rows(current_user, organisation, data["rows"])
        if result.fingerprint() != data["fingerprint"]:
            # The rate card changed since the preview: write nothing the person has not seen.
            rollback()
            _save(PENDING_KEY, organisation.id, _pending_data(data["rows"], result), token)
            flash(
                "Your rate card changed since the file was checked. Nothing was imported: "
                "check the changes again before you import them.",
                "info",
            )
            return redirect(url_for("catalogue.check_import"))
        commit()
    except ImportRefused as error:
        rollback()
        _forget_pending()
        apply_errors(import_form, BusinessRuleViolation({"file": [
            "Your rate card changed since the file was checked, and some rows are no longer "
            "valid. Nothing was imported"]}))  # fmt: skip
        return render_template(
            "catalogue/rate_cards/import.html",
            form=import_form,
            problems=error.problems,
            organisation=organisation,
        ), 422
    except IntegrityError:
        rollback()
        apply_errors(import_form, BusinessRuleViolation({"file": [
            "Someone else changed your rate card at the same moment. Nothing was imported: "
            "try again"]}))  # fmt: skip
        return render_template(
            "catalogue/rate_cards/import.html", form=import_form, problems=[],
            organisation=organisation,
        ), 409  # fmt: skip
    _forget_pending()
    _save(DONE_KEY, organisation.id, {"result": result.to_json()})
    return redirect(url_for("catalogue.import_done"))


@bp.get("/rate-card/import/done")
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def import_done():
    """The confirmation: what the import changed (the email says the same)."""
    organisation = _provider_or_404()
    done = _load(DONE_KEY, organisation)
    if done is None:
        return redirect(url_for("catalogue.rate_card", provider_id=organisation.id))
    result = ImportResult.from_json(done[1]["result"])
    return render_template(
        "catalogue/rate_cards/done.html",
        result=result,
        organisation=organisation,
        **_changes_pages(result, "catalogue.import_done"),
    )


@bp.get("/rate-card/import/help")
def import_help():
    organisation = current_organisation()
    return render_template(
        "catalogue/rate_cards/help.html",
        columns=COLUMNS,
        download_columns=DOWNLOAD_COLUMNS,
        reading_rules=READING_RULES,
        clear_marker=CLEAR_MARKER,
        max_mb=MAX_IMPORT_BYTES // 1024 // 1024,
        max_rows=MAX_IMPORT_ROWS,
        organisation=organisation if can_manage_listings(current_user, organisation) else None,
    )


def _template_organisation():
    """A provider's editors get their listings in the template; everyone else, the header."""
    organisation = current_organisation()
    return organisation if can_manage_listings(current_user, organisation) else None


@bp.get("/rate-card/template.csv")
def import_template_csv():
    return Response(
        template_csv(_template_organisation()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="rate-card-template.csv"',
            "Cache-Control": "private, no-store",
        },
    )


@bp.get("/rate-card/template.xlsx")
def import_template_xlsx():
    return Response(
        template_xlsx(_template_organisation()),
        mimetype=rate_cards.XLSX_MIMETYPE,
        headers={
            "Content-Disposition": 'attachment; filename="rate-card-template.xlsx"',
            "Cache-Control": "private, no-store",
        },
    )
