"""Accreditation use cases, one module per area. Each takes the acting user, audits, flushes."""
