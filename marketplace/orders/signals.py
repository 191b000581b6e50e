"""What orders tells the features built on it, without knowing them: each signal is sent inside
the unit of work of the change (before the commit), so what a receiver writes commits or rolls
back with it. Receivers subscribe with ``@signal.connect``; invoices does in its services."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent with the call-off as sender and ``now=``: it has just been completed. Invoices drafts
# what is left unbilled (``marketplace.invoices.services.completion.bill_on_completion``).
call_off_completed = _signals.signal("call-off-completed")

# Sent while a call-off with payment-by-results terms is checked for placing, with the listing
# as sender and ``start_date=``, ``vat_treatment=``, ``terms=``: a receiver returns (errors by
# field, the most the terms could add). Outcomes checks them (``check_new_terms``).
checking_outcome_terms = _signals.signal("checking-outcome-terms")

# Sent once a call-off with payment-by-results terms is placed (its key known, in the placing
# unit of work), with the call-off as sender and ``actor=``, ``terms=``, ``now=``. Outcomes adds
# the terms, agreed with it (``add_terms_at_placing``).
call_off_placed_with_terms = _signals.signal("call-off-placed-with-terms")

# Sent while a call-off's page is made, with the call-off as sender and ``user=``,
# ``organisation=``: each receiver returns a dict of values for the page. Outcomes adds its
# terms, claims and the actions it offers (``marketplace.outcomes.views``). For a call-off
# awarded by further competition (``competition_id``), a receiver may give ``competition_url``,
# the competition's page, which the page links to (orders never imports competitions).
call_off_page = _signals.signal("call-off-page")

# Sent while an organisation's budgets page is made, with the organisation as sender: each
# receiver returns a dict of values for the page. Outcomes adds ``contingent_pence``, what
# payment by results could still cost the organisation.
budgets_page = _signals.signal("budgets-page")
