"""Information pages every service needs: accessibility statement, cookies and privacy notice."""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/accessibility")
def accessibility() -> str:
    """Show the accessibility statement."""
    return render_template("pages/accessibility.html")


@bp.get("/cookies")
def cookies() -> str:
    """Show the cookies this service sets."""
    return render_template("pages/cookies.html")


@bp.get("/privacy")
def privacy() -> str:
    """Show the privacy notice."""
    return render_template("pages/privacy.html")
