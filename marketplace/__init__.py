"""Rehabilitation Services Marketplace: the application factory."""

from __future__ import annotations

import gc
import logging
import sqlite3
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from flask import Flask, abort, g, jsonify, redirect, request, url_for
from flask import Request as FlaskRequest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property

from marketplace.config import check_production_safety, load_config
from marketplace.core.csp import content_security_policy
from marketplace.core.db import MAX_ID, ping_idle_connections
from marketplace.core.db import db as database
from marketplace.core.scheduler.registry import check_schedules
from marketplace.core.validation import (
    API_TEXT_MESSAGE,
    ClientJSON,
    FormDataParser,
    first_forbidden,
    has_forbidden_characters,
    parse_query,
)

log = logging.getLogger("marketplace")

# The features are imported inside the functions below, not at the top: this module is the
# package's __init__, run whenever any of its modules is imported (a migration imports
# marketplace.core.db), and only building the app needs every feature. Nothing below the app
# level imports this module (.importlinter).


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: config → extensions → blueprints → error handlers → CLI."""
    config = load_config(overrides)
    check_production_safety(config)
    Path(config["INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)

    app = Marketplace(__name__, instance_path=config["INSTANCE_DIR"], static_folder="static")
    app.request_class = Request
    app.config.update(config)
    # `<int:…>` in routes matches only numbers that can be ids, so a huge one is a plain 404.
    app.url_map.converters["int"] = IdConverter
    from marketplace.accounts.session import CookieSessionInterface

    app.session_interface = CookieSessionInterface()
    if config["PROXY_FIX_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = config["PROXY_FIX_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)
    _configure_logging(app)
    _configure_templates(app)
    _init_extensions(app)
    # Request hooks first, so the request id exists before any blueprint's or the API's own hooks.
    _register_request_hooks(app)
    _register_blueprints(app)

    from marketplace.core.errors import register_error_handlers

    register_error_handlers(app)
    _register_cli(app)
    _register_jobs()
    check_schedules(app.config["SCHEDULES"])
    _settle_start_up_heap()
    return app


def _settle_start_up_heap() -> None:
    """Freeze what starting made (modules, the schema, routes, compiled templates and
    statements) out of the garbage collector's reach: it lives as long as the process, and a
    full collection otherwise scans all of it again. On a page listing 200 bids, every few
    requests a full collection over the whole heap took 100 ms or more; frozen, it scans only
    what requests make (``make bench``: the competition pages). Garbage is collected first, so
    none is frozen; what an earlier app froze (a command or a test that builds another) is
    thawed first, so that it can be collected once unused."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class Marketplace(Flask):
    """Flask, remembering which of its views and hooks are coroutine functions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Weak keys: a view or hook registered once is remembered, and one made on the fly (a bound
        # method) is forgotten with it. The values must not refer to the keys, or nothing would be.
        self._plain_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def ensure_sync(self, func: Callable) -> Callable:
        # Flask's documented override point, asked about every view and hook on every request.
        # Whether a function is a coroutine function cannot change, so a "no" is remembered
        # rather than found again by unwrapping it in inspect. Coroutine functions (none today)
        # take Flask's own path each time.
        try:
            if func in self._plain_functions:
                return func
        except TypeError:  # not weakly referable: ask Flask
            return super().ensure_sync(func)
        result = super().ensure_sync(func)
        if result is func:
            self._plain_functions[func] = True
        return result


class Request(FlaskRequest):
    """Flask's request, parsed so that input that cannot be saved is seen and refused."""

    # request.get_json() refuses JSON nested too deep or holding text that cannot be saved.
    # Flask sets the app's JSON provider on each request it makes (RequestContext); a request
    # keeps ClientJSON, which parses only what clients send.
    @property
    def json_module(self):
        return ClientJSON

    @json_module.setter
    def json_module(self, value) -> None:
        pass

    # Bytes that are not UTF-8 in a form or query string become lone surrogates, refused by the
    # forms and by refuse_unsavable_text_in_address, not kept as "%ED…" text or a 500.
    form_data_parser_class = FormDataParser

    @cached_property
    def args(self) -> ImmutableMultiDict:
        return self.parameter_storage_class(parse_query(self.query_string))


class IdConverter(IntegerConverter):
    def __init__(self, map, *args, **kwargs):  # noqa: A002 - Werkzeug's signature
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _configure_logging(app: Flask) -> None:
    class RequestIdFilter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            try:
                record.request_id = g.get("request_id", "-")
            except RuntimeError:
                record.request_id = "-"
            return True

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    log.handlers[:] = [handler]
    log.setLevel(app.config["LOG_LEVEL"])
    log.propagate = False


def _configure_templates(app: Flask) -> None:
    app.jinja_env.loader = jinja2.ChoiceLoader(
        [
            app.jinja_env.loader,
            jinja2.PrefixLoader(
                {
                    "govuk_frontend_jinja": jinja2.PackageLoader("govuk_frontend_jinja"),
                    "govuk_frontend_wtf": jinja2.PackageLoader("govuk_frontend_wtf"),
                }
            ),
        ]
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    from marketplace.core import cache, filters
    from marketplace.core.cache import FragmentCache
    from marketplace.core.urls import fixed_url

    filters.register(app)
    app.jinja_env.globals["fragment_cache"] = FragmentCache()
    app.jinja_env.globals["fixed_url"] = fixed_url
    # The GOV.UK components of every page's layout, imported once as globals. Imported in
    # base.html with `{% from … import … %}`, each page render asked Jinja for the macro's module
    # four times, and each time Jinja compared the page's globals with the macro template's in
    # Python (``make bench``: the signed-in dashboard). The macros use only their arguments, so
    # the module made once without a context renders exactly what the imports did.
    for component, macro in (
        ("skip-link", "govukSkipLink"),
        ("service-navigation", "govukServiceNavigation"),
        ("phase-banner", "govukPhaseBanner"),
        ("notification-banner", "govukNotificationBanner"),
    ):
        template = app.jinja_env.get_template(
            f"govuk_frontend_jinja/components/{component}/macro.html"
        )
        app.jinja_env.globals[macro] = getattr(template.module, macro)
    cache.init_app(app)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite: enforce foreign keys, WAL for concurrent readers, and wait rather than fail on locks."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()


def _init_extensions(app: Flask) -> None:
    from marketplace.core.extensions import csrf, limiter, login_manager, migrate, signed_csrf_token

    database.init_app(app)
    if app.config["DATABASE_PING_AFTER_IDLE_SECONDS"]:
        with app.app_context():
            ping_idle_connections(database.engine, app.config["DATABASE_PING_AFTER_IDLE_SECONDS"])
    migrate.init_app(
        app, database, directory=str(Path(__file__).resolve().parent.parent / "migrations")
    )
    csrf.init_app(app)
    # In place of Flask-WTF's own global and context value (extensions.py says why the two give
    # equally valid tokens); context processors registered later win.
    app.jinja_env.globals["csrf_token"] = signed_csrf_token
    app.context_processor(lambda: {"csrf_token": signed_csrf_token})
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.sign_in"
    login_manager.login_message = "Sign in to see that page"
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    # Import every model so metadata is complete for migrations and create_all.
    import marketplace.models  # noqa: F401
    from marketplace.accounts.session import load_user

    login_manager.user_loader(load_user)

    # The signal receivers connect when their modules are imported, and no page or command may
    # be what first imports them: a completed call-off is billed at once (invoices, on
    # orders.signals.call_off_completed), a credit note on a card payment is refunded and a BACS
    # payment is refused while a card payment is processing (payments, on invoices.signals), and a
    # provider admitted to a lot is invited to its open further competitions (competitions, on
    # accreditation.signals.lot_membership_admitted).
    import marketplace.competitions.services.publishing  # noqa: F401
    import marketplace.invoices.services.completion  # noqa: F401
    import marketplace.payments.services.bacs  # noqa: F401
    import marketplace.payments.services.refunds  # noqa: F401


def _register_blueprints(app: Flask) -> None:
    from marketplace import pages
    from marketplace.accounts.api import blp as accounts_api
    from marketplace.accounts.permissions import can_view_scheduled_runs
    from marketplace.accounts.services.tokens import authenticate_api_token
    from marketplace.accounts.views import bp as accounts_bp
    from marketplace.accreditation.api import blp as accreditation_api
    from marketplace.accreditation.api import memberships_blp as accreditation_memberships_api
    from marketplace.accreditation.views import bp as accreditation_bp
    from marketplace.accreditation.views.public import bp as public_arrangements_bp
    from marketplace.catalogue.api import blp as catalogue_api
    from marketplace.catalogue.api_rate_cards import blp as rate_cards_api
    from marketplace.catalogue.views import bp as catalogue_bp
    from marketplace.catalogue.views.search import bp as catalogue_search_bp
    from marketplace.competitions.api import blp as competitions_api
    from marketplace.competitions.api import public_blp as competitions_public_api
    from marketplace.competitions.views import bp as competitions_bp
    from marketplace.core.api import init_api
    from marketplace.core.extensions import csrf
    from marketplace.core.scheduler import views as scheduler_views
    from marketplace.dashboard.views import bp as dashboard_bp
    from marketplace.funding.api import blp as funding_api
    from marketplace.funding.views import bp as funding_bp
    from marketplace.insight.api import blp as insight_api
    from marketplace.insight.api import public_blp as insight_public_api
    from marketplace.insight.views import bp as insight_bp
    from marketplace.invoices import templates_bp as invoices_templates_bp
    from marketplace.invoices.api import blp as invoices_api
    from marketplace.invoices.views import bp as invoices_bp
    from marketplace.orders.api import blp as orders_api
    from marketplace.orders.views import bp as orders_bp
    from marketplace.outcomes.api import blp as outcomes_api
    from marketplace.outcomes.views import bp as outcomes_bp
    from marketplace.payments.api import blp as payments_api
    from marketplace.payments.views import bp as payments_bp
    from marketplace.reference.api import blp as reference_api

    for blueprint in (
        dashboard_bp,
        pages.bp,
        accounts_bp,
        accreditation_bp,
        public_arrangements_bp,
        catalogue_bp,
        catalogue_search_bp,
        orders_bp,
        funding_bp,
        competitions_bp,
        invoices_bp,
        outcomes_bp,
        invoices_templates_bp,
        payments_bp,
        insight_bp,
    ):
        app.register_blueprint(blueprint)
    scheduler_views.init_app(app, can_view_runs=can_view_scheduled_runs)
    api_blueprints = (
        accounts_api,
        reference_api,
        accreditation_api,
        accreditation_memberships_api,
        catalogue_api,
        rate_cards_api,
        orders_api,
        funding_api,
        competitions_api,
        competitions_public_api,
        outcomes_api,
        invoices_api,
        payments_api,
        insight_api,
        insight_public_api,
    )
    init_api(app, api_blueprints, authenticate_token=authenticate_api_token)
    for blueprint in api_blueprints:
        # The API authenticates with bearer tokens, never cookies, so CSRF does not apply.
        csrf.exempt(blueprint)

    @app.get("/favicon.ico")
    def favicon():
        return redirect(url_for("static", filename="assets/images/app-favicon.svg"), 301)

    @app.get("/healthz")
    def healthz():
        try:
            database.session.execute(text("SELECT 1"))
            database_status = "ok"
        except Exception:  # the point of a health check is to report, not raise
            log.exception("health check: database unavailable")
            database_status = "unavailable"
        finally:
            database.session.rollback()
        status = 200 if database_status == "ok" else 503
        body = {"status": "ok" if status == 200 else "error", "database": database_status}
        return jsonify(body), status


def _register_request_hooks(app: Flask) -> None:
    from marketplace.accounts.session import enforce_session_rules, load_current_organisation
    from marketplace.navigation import navigation_context

    @app.before_request
    def assign_request_id() -> None:
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = (
            supplied if 8 <= len(supplied) <= 64 and supplied.isprintable() else uuid.uuid4().hex
        )

    @app.teardown_appcontext
    def undo_uncommitted_outside_work(exc: BaseException | None) -> None:
        # A request (or command) that ended without committing leaves no stray files behind.
        from marketplace.core.db import run_rollback_hooks

        run_rollback_hooks()

    @app.before_request
    def refuse_unsavable_text_in_address():
        # Query-string parameters reach searches, filters and lookups on every page and in the
        # API: one that holds a NUL, another control character or an unpaired surrogate is
        # refused here, once, rather than by each of them (a path holding one names nothing).
        if has_forbidden_characters(request.path):
            abort(404)
        name = first_forbidden(request.args)
        if name is None:
            return None
        from marketplace.core.errors import problem_response, render_error, wants_problem_json

        # Answered here, not raised, so that the answer names the parameter: in the API as a
        # field error (422, like any other bad parameter), on a page in the text of a 400.
        if wants_problem_json():
            return problem_response(422, errors={name: [API_TEXT_MESSAGE]})
        return render_error(
            400,
            f"The address has a parameter, {name}, that contains a character that cannot be "
            "used (a NUL or other control character, or a broken symbol). Remove it and try "
            "again.",
        )

    app.before_request(load_current_organisation)
    app.before_request(enforce_session_rules)
    app.context_processor(navigation_context)

    @app.after_request
    def unprocessable_form(response):
        # A form sent back with an error summary did not do what was asked: say so in the status,
        # as the API does, so scripts and monitoring can tell a refused submission from a success.
        if request.method == "POST" and response.status_code == 200 and g.get("shows_form_errors"):
            response.status_code = 422
        return response

    # Every response's security headers, unless the view set its own; worked out once.
    defaults = [
        ("Content-Security-Policy", content_security_policy()),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]
    transport_security = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    not_cached = ("Cache-Control", "no-store")

    @app.after_request
    def security_headers(response):
        headers = response.headers
        # One pass over the headers the view set (setdefault looks through them for each one).
        already = {name.lower() for name in headers.keys()}  # noqa: SIM118 (Headers iterates pairs)
        for name, value in defaults:
            if name.lower() not in already:
                headers.add(name, value)
        if app.config["HSTS"] and "strict-transport-security" not in already:
            headers.add(*transport_security)
        endpoint = request.endpoint
        if endpoint and not endpoint.startswith("static") and "cache-control" not in already:
            headers.add(*not_cached)
        headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.after_request
    def log_request(response):
        if request.endpoint != "static":
            log.info("%s %s %s", request.method, request.path, response.status_code)
        return response


def _register_cli(app: Flask) -> None:
    from marketplace.accounts.cli import accounts_cli
    from marketplace.accreditation.cli import accreditation_cli
    from marketplace.catalogue.cli import catalogue_cli
    from marketplace.core.notifications.cli import notifications_cli
    from marketplace.core.scheduler.cli import scheduler_cli
    from marketplace.demo.cli import demo_cli
    from marketplace.insight.cli import insight_cli
    from marketplace.invoices.cli import invoices_cli
    from marketplace.orders.cli import orders_cli
    from marketplace.reference.cli import reference_cli

    for group in (
        accounts_cli,
        accreditation_cli,
        catalogue_cli,
        demo_cli,
        insight_cli,
        notifications_cli,
        invoices_cli,
        orders_cli,
        reference_cli,
        scheduler_cli,
    ):
        app.cli.add_command(group)


def _register_jobs() -> None:
    """Each feature declares its scheduled jobs in its own ``jobs.py`` (see
    ``marketplace.core.scheduler.registry``); importing the module registers them."""
    import marketplace.accreditation.jobs
    import marketplace.catalogue.jobs
    import marketplace.competitions.jobs
    import marketplace.core.notifications.jobs
    import marketplace.core.scheduler.jobs
    import marketplace.insight.jobs
    import marketplace.invoices.jobs
    import marketplace.orders.jobs  # noqa: F401
