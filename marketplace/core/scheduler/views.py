"""The scheduled jobs page: each job with its schedule and last run, and every run, newest first.

Who may see it is the accounts feature's rule, handed in by the app factory (``init_app``), since
the core does not import features.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask, abort, current_app, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.core.clock import utcnow
from marketplace.core.scheduler import queries, registry
from marketplace.core.scheduler.forms import RunFilterForm
from marketplace.core.scheduler.services import describe_counts, next_due

bp = Blueprint("scheduler", __name__, template_folder="templates", url_prefix="/scheduled-jobs")


def init_app(app: Flask, *, can_view_runs: Callable[[object], bool]) -> None:
    app.extensions["scheduler.can_view_runs"] = can_view_runs
    app.register_blueprint(bp)


def _page_number(raw: str | None) -> int:
    text = (raw or "").strip()
    return int(text) if text.isdigit() and len(text) <= 6 and int(text) > 0 else 1


@bp.get("")
@login_required
def runs():
    if not current_app.extensions["scheduler.can_view_runs"](current_user):
        abort(403)
    jobs = registry.registered()
    form = RunFilterForm(formdata=request.args, job_names=[job.name for job in jobs])
    page = None
    if form.validate():
        job_name = form.job.data or None
        page = queries.runs(job_name, _page_number(request.args.get("page")))

        def url_for_page(number: int) -> str:
            return url_for("scheduler.runs", job=job_name, page=number)

        page.prev_url = url_for_page(page.page - 1) if page.has_prev else None
        page.next_url = url_for_page(page.page + 1) if page.has_next else None
    else:
        url_for_page = None
    now = utcnow()
    last = queries.last_runs()
    schedules = current_app.config["SCHEDULES"]
    rows = []
    for job in jobs:
        schedule = registry.schedule_of(job, schedules)
        rows.append(
            {
                "job": job,
                "schedule": schedule,
                "next_due": next_due(schedule, now) if schedule else None,
                "last": last.get(job.name),
            }
        )
    return render_template(
        "scheduler/runs.html",
        form=form,
        jobs=rows,
        runs=page,
        url_for_page=url_for_page,
        describe_counts=describe_counts,
        now=now,
        filtered=bool(request.args.get("job")),
    )
