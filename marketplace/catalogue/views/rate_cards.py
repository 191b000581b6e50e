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
from marketplace.accounts.session import current_organisation
from marketplace.catalogue import imports, rate_cards
from marketplace.catalogue.permissions import can_manage_listings
from marketplace.catalogue.views import bp
from marketplace.db import commit, rollback
from marketplace.errors import BusinessRuleViolation
from marketplace.views_helpers import apply_errors

PENDING_KEY = "rate_card_import"


class ImportForm(BaseForm):
    file = FileField(
        "Upload your rate card",
        description=f"A CSV file or an Excel workbook (XLSX), up to "
        f"{imports.MAX_IMPORT_BYTES // 1024 // 1024} MB, with the template's columns.",
        widget=GovFileInput(),
    )
    submit = submit_field("Check the file")

    def validate_file(self, field) -> None:
        if not getattr(field.data, "filename", None):
            raise ValidationError("Select a CSV or XLSX file to upload")


class ConfirmImportForm(BaseForm):
    token = HiddenField()
    submit = submit_field("Import these listings")


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


def _forget_pending() -> None:
    pending = session.pop(PENDING_KEY, None)
    if pending:
        with contextlib.suppress(OSError):
            os.remove(_pending_path(pending["token"]))


@bp.route("/rate-card/import", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def import_rate_card():
    organisation = _provider_or_404()
    form = ImportForm()
    problems: list[imports.RowError] = []
    if form.validate_on_submit():
        upload = form.file.data
        try:
            rows = imports.read_rate_card_file(upload.filename, upload.stream)
            result = imports.import_rows(current_user, organisation, rows, dry_run=True)
        except imports.ImportRefused as error:
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
            _forget_pending()
            token = secrets.token_hex(16)
            with open(_pending_path(token), "x", encoding="utf-8") as target:
                json.dump(rows, target, ensure_ascii=False)
            session[PENDING_KEY] = {"token": token, "organisation_id": organisation.id}
            return render_template(
                "catalogue/rate_cards/preview.html",
                result=result,
                form=ConfirmImportForm(token=token),
                organisation=organisation,
            )
    return render_template(
        "catalogue/rate_cards/import.html",
        form=form,
        problems=problems,
        organisation=organisation,
    )


@bp.post("/rate-card/import/confirm")
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def confirm_import():
    organisation = _provider_or_404()
    form = ConfirmImportForm()
    pending = session.get(PENDING_KEY)
    if (
        not form.validate_on_submit()
        or not pending
        or pending.get("token") != form.token.data
        or pending.get("organisation_id") != organisation.id
    ):
        flash("That import has expired or was already done. Upload the file again.", "info")
        return redirect(url_for("catalogue.import_rate_card"))
    try:
        with open(_pending_path(pending["token"]), encoding="utf-8") as source:
            rows = json.load(source)
    except OSError:
        session.pop(PENDING_KEY, None)
        flash("That import has expired or was already done. Upload the file again.", "info")
        return redirect(url_for("catalogue.import_rate_card"))
    import_form = ImportForm(formdata=None)
    try:
        result = imports.import_rows(current_user, organisation, rows)
        imports.refresh_search(result.listing_ids)
        commit()
    except imports.ImportRefused as error:
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
    flash(
        f"Rate card imported: {result.created:,} listings created, {result.updated:,} updated, "
        f"{result.prices_changed:,} prices changed.",
        "success",
    )
    return redirect(url_for("catalogue.rate_card", provider_id=organisation.id))


@bp.get("/rate-card/import/help")
def import_help():
    return render_template(
        "catalogue/rate_cards/help.html",
        columns=imports.COLUMNS,
        max_mb=imports.MAX_IMPORT_BYTES // 1024 // 1024,
        max_rows=imports.MAX_IMPORT_ROWS,
    )


@bp.get("/rate-card/template.csv")
def import_template_csv():
    return Response(
        imports.template_csv(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="rate-card-template.csv"'},
    )


@bp.get("/rate-card/template.xlsx")
def import_template_xlsx():
    return Response(
        imports.template_xlsx(),
        mimetype=rate_cards.XLSX_MIMETYPE,
        headers={"Content-Disposition": 'attachment; filename="rate-card-template.xlsx"'},
    )
