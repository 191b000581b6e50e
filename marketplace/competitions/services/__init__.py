"""Further competition use cases, one module per concern (``verb_noun(actor, …)``): they check
the rules with their reasons, move states through the maps in ``models``, audit and email, and
flush (the caller commits).

``setup`` (the buyer's draft, section by section, and what publishing needs), ``funding`` (the
co-funders' budgets), ``documents``, ``publishing`` (publish, the invited list, invitations on
admission), ``cancelling``, ``clarifications``, ``bids``, ``evaluation`` (closing, declarations,
scores, moderation, ranking), ``scoring`` (the arithmetic) and ``award`` (the decision, the
assessment summaries, standstill, the call-off)."""
