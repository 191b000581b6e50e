"""What invoices announce, for the features that build on them (payments) to act on.

Invoices import nothing above them: a feature that must act when an invoice changes connects a
receiver here. Receivers run inside the sender's unit of work, so what they write commits or
rolls back with it, and an exception they raise refuses the change."""

from blinker import Namespace

_signals = Namespace()

# Sent by `raise_credit_note` (sender: the invoice; `note`, `actor`) once the credit note is
# written, before it is audited: a receiver that gives the money back to the payer records
# where it went in `note.refund_reference`.
credit_note_raised = _signals.signal("credit-note-raised")

# Sent by `mark_paid_by_bacs` (sender: the invoice, locked) before it is marked paid: a
# receiver raises TransitionConflict when a payment by other means may still take the money.
bacs_payment_recording = _signals.signal("bacs-payment-recording")
