"""A BACS payment is refused while a card payment of the invoice is processing.

Connects to ``invoices.signals.bacs_payment_recording`` when imported; the app factory imports
this module so the receiver is connected whenever the app runs.
"""

from __future__ import annotations

from marketplace.core.errors import (
    TransitionConflict,
)
from marketplace.invoices.models import Invoice
from marketplace.invoices.signals import bacs_payment_recording
from marketplace.payments.models import (
    CardPaymentStatus,
)
from marketplace.payments.queries import card_payment_for


@bacs_payment_recording.connect
def refuse_bacs_while_card_processing(invoice: Invoice) -> None:
    """A card payment under way may still take the money: a BACS payment recorded as well would
    pay the invoice twice. (One waiting for 3-D Secure has taken nothing; the card pages cancel
    it once the invoice is paid.)"""
    attempt = card_payment_for(invoice.id)
    if attempt is not None and attempt.status == CardPaymentStatus.PROCESSING:
        raise TransitionConflict(
            {
                "status": [
                    "A card payment of this invoice is being processed. Wait for its result "
                    "before recording a BACS payment: if it succeeds, the invoice is paid"
                ]
            }
        )
