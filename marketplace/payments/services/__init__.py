"""Card payments, by concern: Stripe (gateway), the organisation's card (saved_cards), paying an
invoice (card_payments), what a payment's outcome does (payment_outcomes), Stripe's webhook
(webhooks), refunds for credit notes (refunds) and BACS refused while a card payment is processing
(bacs)."""
