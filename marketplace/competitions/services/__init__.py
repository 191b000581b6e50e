"""Further competition use cases, one module per concern (``verb_noun(actor, …)``): they check
the rules with their reasons, move states through the maps in ``models``, audit and email, and
flush (the caller commits)."""
