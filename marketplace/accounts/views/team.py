"""Account pages: team (being built)."""

from marketplace.accounts.views import bp  # noqa: F401
