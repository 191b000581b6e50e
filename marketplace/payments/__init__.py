"""Card payment of invoices through Stripe: a saved card per buyer organisation, paying a validated
invoice, the Stripe webhook, and refunds for credit notes."""
