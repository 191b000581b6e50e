"""Payment by results: outcome terms on a call-off, the provider's claims with evidence, the
buyer's verification, and the contingent liability each funder carries."""
