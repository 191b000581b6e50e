"""Further-competition use cases, one module per concern: ``setup`` (the buyer's draft, section by
section, and what publishing needs), ``funding`` (the co-funders' budgets), ``documents``,
``publishing`` (publish, the invited list, invitations on admission) and ``cancelling``."""
