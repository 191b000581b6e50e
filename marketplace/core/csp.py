"""The Content-Security-Policy of every page."""

from __future__ import annotations

CSP_DIRECTIVES: tuple[tuple[str, str], ...] = (
    ("default-src", "'self'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("font-src", "'self'"),
    ("connect-src", "'self'"),
    ("frame-src", "'self'"),
    ("object-src", "'none'"),
    ("base-uri", "'self'"),
    ("form-action", "'self'"),
    ("frame-ancestors", "'none'"),
)


def content_security_policy(extra: dict[str, list[str]] | None = None) -> str:
    """Every page's Content-Security-Policy (no inline script or style, nothing from elsewhere),
    with ``extra`` sources added to the named directives: only a page that needs another host
    (the card pages, for Stripe.js) asks for one, by setting this header itself."""
    extra = extra or {}
    return "; ".join(
        f"{name} {' '.join([sources, *extra.get(name, [])])}" for name, sources in CSP_DIRECTIVES
    )
