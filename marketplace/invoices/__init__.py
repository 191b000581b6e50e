"""Invoices from delivery: the monthly run, issuing with gapless numbers, validation, disputes and
payment."""

from flask import Blueprint

# The invoice emails' templates (email/invoices_*.txt), found by ``render_template`` through this
# blueprint's template folder.
templates_bp = Blueprint("invoices_templates", __name__, template_folder="templates")
