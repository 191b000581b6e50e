"""What orders tells the features built on it, without knowing them: each signal is sent inside
the unit of work of the change (before the commit), so what a receiver writes commits or rolls
back with it. Receivers subscribe with ``@signal.connect``; invoices does in its services."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent with the call-off as sender and ``now=``: it has just been completed. Invoices drafts
# what is left unbilled (``marketplace.invoices.services.bill_on_completion``).
call_off_completed = _signals.signal("call-off-completed")
