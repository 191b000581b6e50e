"""Account pages: admin (being built)."""

from marketplace.accounts.views import bp  # noqa: F401
