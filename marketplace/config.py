"""Configuration from ``MARKETPLACE_*`` environment variables, with safe embedded defaults.

The embedded default is SQLite in ``instance/`` and email printed to the console, so that
``make run`` works on a fresh machine. Production mode refuses to start without a real secret key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 - refused in production


class ConfigurationError(RuntimeError):
    """The configuration cannot run the service safely."""


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(f"MARKETPLACE_{name}", default)


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return default if value in (None, "") else int(value)


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read the configuration; ``overrides`` (used by tests) win over the environment."""
    env = _env("ENV", "development")
    instance_dir = Path(_env("INSTANCE_PATH", PROJECT_ROOT / "instance"))
    config: dict[str, Any] = {
        "ENV_NAME": env,
        "SECRET_KEY": _env("SECRET_KEY", DEFAULT_SECRET_KEY),
        # Seals providers' bank details at rest (marketplace/core/sealed.py); SECRET_KEY when unset.
        "DATA_KEY": _env("DATA_KEY"),
        "SQLALCHEMY_DATABASE_URI": _env(
            "DATABASE_URL", f"sqlite:///{instance_dir / 'marketplace.db'}"
        ),
        "INSTANCE_DIR": str(instance_dir),
        # Uploaded evidence lives outside the web root, under generated names.
        "EVIDENCE_DIR": _env("EVIDENCE_DIR", str(instance_dir / "evidence")),
        # Working days a member has to renew its self-declaration when the authority asks.
        "REDECLARATION_DAYS": _env_int("REDECLARATION_DAYS", 5),
        # Call-offs: working days a provider has to accept or decline one that is sent to it.
        "CALL_OFF_RESPONSE_DAYS": _env_int("CALL_OFF_RESPONSE_DAYS", 2),
        # A buyer whose membership names no spend limit may commit this much of their
        # organisation's money on one call-off without an approver (pence, incl. VAT).
        "BUYER_SPEND_LIMIT_PENCE": _env_int("BUYER_SPEND_LIMIT_PENCE", 500_000),
        # Anti-splitting: a buyer's call-offs for the same service over this many days count
        # together towards the arrangement's direct-award limit.
        "DIRECT_AWARD_LOOKBACK_DAYS": _env_int("DIRECT_AWARD_LOOKBACK_DAYS", 365),
        # Further competitions: the bid deadline is at least this many days after publishing
        # (checked when the deadline is set and again at publication).
        "COMPETITION_MIN_BID_DAYS": _env_int("COMPETITION_MIN_BID_DAYS", 10),
        # The standstill a new competition proposes (working days); 0 needs a recorded reason.
        "COMPETITION_STANDSTILL_WORKING_DAYS": _env_int("COMPETITION_STANDSTILL_WORKING_DAYS", 8),
        # Commissioning insight: the VCSE share of paid spend that commissioners aim for
        # (percent; the 2007 strategy's 10%), and the first financial year of the two-year
        # period it is measured over (a year counts from April: 2025 is 2025-26).
        "VCSE_SHARE_AIM_PERCENT": _env_int("VCSE_SHARE_AIM_PERCENT", 10),
        "VCSE_PERIOD_START_YEAR": _env_int("VCSE_PERIOD_START_YEAR", 2025),
        # Open data: the OCDS ocid prefix registered for this publisher ("ocds-" and 6 characters).
        "OCDS_OCID_PREFIX": _env("OCDS_OCID_PREFIX", "ocds-rehab1"),
        "BASE_URL": _env("BASE_URL", "http://127.0.0.1:5000"),
        # Every date entered must be in this year or later, and no more than this many years
        # after today (an end date: after its start). See marketplace.core.validation.
        "DATE_EARLIEST_YEAR": _env_int("DATE_EARLIEST_YEAR", 2000),
        "DATE_HORIZON_YEARS": _env_int("DATE_HORIZON_YEARS", 5),
        "SERVICE_NAME": _env("SERVICE_NAME", "Rehabilitation Services Marketplace"),
        "SUPPORT_EMAIL": _env("SUPPORT_EMAIL", "support@marketplace.example"),
        # Email: console (default), smtp or notify.
        "EMAIL_BACKEND": _env("EMAIL_BACKEND", "console"),
        "MAIL_FROM": _env(
            "MAIL_FROM", "Rehabilitation Services Marketplace <no-reply@marketplace.example>"
        ),
        "SMTP_HOST": _env("SMTP_HOST", "127.0.0.1"),
        "SMTP_PORT": _env_int("SMTP_PORT", 25),
        "SMTP_USERNAME": _env("SMTP_USERNAME"),
        "SMTP_PASSWORD": _env("SMTP_PASSWORD"),
        "SMTP_STARTTLS": _env_bool("SMTP_STARTTLS", False),
        "SMTP_TIMEOUT": _env_int("SMTP_TIMEOUT", 10),
        "NOTIFY_API_KEY": _env("NOTIFY_API_KEY"),
        "NOTIFY_TEMPLATE_ID": _env("NOTIFY_TEMPLATE_ID"),
        "NOTIFY_BASE_URL": _env("NOTIFY_BASE_URL", "https://api.notifications.service.gov.uk"),
        # Deliver queued email straight after the commit that queued it; the periodic
        # `flask notifications send` retries whatever failed.
        "SEND_EMAIL_AFTER_COMMIT": _env_bool("SEND_EMAIL_AFTER_COMMIT", True),
        "NOTIFICATION_MAX_ATTEMPTS": _env_int("NOTIFICATION_MAX_ATTEMPTS", 8),
        # The scheduler (marketplace/core/scheduler): how often `flask scheduler run` looks for
        # due jobs, how long runs are kept, and any job's schedule changed from its default: a
        # crontab line in London time, or "off", in MARKETPLACE_SCHEDULE_<JOB>, e.g.
        # MARKETPLACE_SCHEDULE_ORDERS_EXPIRE_CALL_OFFS="10 * * * *" (`flask scheduler jobs`).
        "SCHEDULER_TICK_SECONDS": _env_int("SCHEDULER_TICK_SECONDS", 30),
        "SCHEDULER_KEEP_RUNS_DAYS": _env_int("SCHEDULER_KEEP_RUNS_DAYS", 90),
        "SCHEDULES": {
            name.removeprefix("MARKETPLACE_SCHEDULE_"): value
            for name, value in os.environ.items()
            if name.startswith("MARKETPLACE_SCHEDULE_")
        },
        # Security
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env == "production",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": env == "production",
        "PERMANENT_SESSION_LIFETIME": _env_int("SESSION_LIFETIME_SECONDS", 8 * 3600),
        # Sessions end a fixed time after sign-in rather than sliding on with each request.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "WTF_CSRF_ENABLED": True,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "MAX_CONTENT_LENGTH": _env_int("MAX_CONTENT_LENGTH", 12 * 1024 * 1024),
        "MAX_FORM_MEMORY_SIZE": _env_int("MAX_FORM_MEMORY_SIZE", 500 * 1024),
        "HSTS": env == "production",
        # Behind a load balancer, how many proxies set X-Forwarded-For/-Proto/-Host in front of
        # the app (0 = none). Needed for the right client address in rate limits and the audit log.
        "PROXY_FIX_COUNT": _env_int("PROXY_FIX_COUNT", 0),
        "RATELIMIT_STORAGE_URI": _env("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_ENABLED": _env_bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SIGN_IN_FAILURE_LIMIT": _env("SIGN_IN_FAILURE_LIMIT", "10 per 15 minutes"),
        "PASSWORD_MIN_LENGTH": _env_int("PASSWORD_MIN_LENGTH", 10),
        "RESET_LINK_LIFETIME_SECONDS": _env_int("RESET_LINK_LIFETIME_SECONDS", 3600),
        "CONFIRM_LINK_LIFETIME_SECONDS": _env_int("CONFIRM_LINK_LIFETIME_SECONDS", 7 * 24 * 3600),
        "INVITATION_LIFETIME_SECONDS": _env_int("INVITATION_LIFETIME_SECONDS", 14 * 24 * 3600),
        "TOTP_ISSUER": _env("TOTP_ISSUER", "Rehabilitation Marketplace"),
        # API
        "API_TITLE": "Rehabilitation Services Marketplace API",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        "API_PAGE_SIZE_MAX": 100,
        # Card payments through Stripe: offered only when the secret key and the webhook's signing
        # secret are both set. STRIPE_API_BASE points the SDK elsewhere (localstripe in tests).
        # Cards are entered in Stripe's own form (Stripe.js, from STRIPE_JS_URL) only when the
        # publishable key is set too; the card pages' Content-Security-Policy opens STRIPE_JS_URL's
        # host and the API base (api.stripe.com unless STRIPE_API_BASE says otherwise).
        "STRIPE_SECRET_KEY": _env("STRIPE_SECRET_KEY"),
        "STRIPE_PUBLISHABLE_KEY": _env("STRIPE_PUBLISHABLE_KEY"),
        "STRIPE_WEBHOOK_SECRET": _env("STRIPE_WEBHOOK_SECRET"),
        "STRIPE_API_BASE": _env("STRIPE_API_BASE"),
        "STRIPE_JS_URL": _env("STRIPE_JS_URL", "https://js.stripe.com/v3/"),
        # Logging
        "LOG_LEVEL": _env("LOG_LEVEL", "INFO"),
        "TESTING": False,
    }
    if overrides:
        config.update(overrides)
    # A server database can drop idle connections, so a connection idle in the pool for this
    # long is checked before use (db.ping_idle_connections); a SQLite file cannot (0: never).
    if "DATABASE_PING_AFTER_IDLE_SECONDS" not in config:
        is_sqlite = config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
        config["DATABASE_PING_AFTER_IDLE_SECONDS"] = 0 if is_sqlite else 1.0
    return config


def check_production_safety(config: dict[str, Any]) -> None:
    """Refuse to start in production with a missing or default secret key."""
    if config["ENV_NAME"] != "production":
        return
    key = config.get("SECRET_KEY") or ""
    if key == DEFAULT_SECRET_KEY or len(key) < 32:
        raise ConfigurationError(
            "MARKETPLACE_SECRET_KEY must be set to a random value of at least 32 characters "
            "in production (for example: python -c 'import secrets; print(secrets.token_hex(32))')."
        )
