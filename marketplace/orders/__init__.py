"""Call-offs, funding, budgets, approvals, delivery and invoices."""
