"""Account pages: tokens (being built)."""

from marketplace.accounts.views import bp  # noqa: F401
