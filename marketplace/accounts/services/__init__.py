"""Account use cases, one module per concern. Each takes the acting user, enforces the rules,
audits, flushes, never commits.

- ``common``: what the others share (audited fields, finding people by email, the new-password
  rule, one-time links, a person's home organisation)
- ``registration``: a provider registers; email confirmation
- ``signing_in``: checking a password, recording sign-ins
- ``passwords``: reset by link, change, and the person's own profile
- ``two_factor``: authenticator-app codes and recovery codes
- ``organisations``: the authority creates, edits, activates and deactivates organisations
- ``teams``: invitations, roles and removing people
- ``limits``: buyers' spend limits and approvers' approval limits
- ``tokens``: personal API tokens
- ``settings``: what e-invoices need (electronic address, VAT registration, bank account)
"""
