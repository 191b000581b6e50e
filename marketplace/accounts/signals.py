"""What accounts announces to the features built on it.

Those features import accounts, never the other way (the import direction in
docs/architecture.md): where an accounts page shows something a feature above owns, accounts
sends a signal and the feature answers it.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent with the organisation (as sender) while its settings page is drawn. Each receiver returns
# a warning about those settings that its own feature has (safe HTML from its own template), or
# None; the page shows each one.
organisation_settings_warnings = _signals.signal("organisation-settings-warnings")
