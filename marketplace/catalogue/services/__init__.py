"""Catalogue use cases, one module per concern: ``listings`` (create, edit, states, and the rules
the rate card import shares), ``details`` (a listing's own fields), ``areas`` (where it is
offered), ``vat`` (VAT registration), ``prices`` (versions and uplifts), ``stale`` (reminders).
Each takes the acting user, audits, flushes and never commits."""
