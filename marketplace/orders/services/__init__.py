"""Call-off rules: placing at the locked price on a lawful route, funding shares and budgets,
approval, the provider's response with capacity, delivery, cancellation and completion.

Every function takes the acting user, checks that they may act, enforces the rules, writes an
audit event and queues the emails, and flushes without committing. Rules that read and then
write shared totals (budget headroom, listing capacity, a buyer's running total towards the
direct-award limit, a co-funder's standing authorisation) are decided one request after another:
they lock the rows they read first (``lock_rows``), or, for a buyer's running total over many
call-offs, a lock named after the buyer, the provider and the lot (``lock_name``). Placing a
call-off takes from each funder's budget in one conditional UPDATE per budget, its last
statements, so that a budget's row is held only from there to the commit.

One module per concern, each imported by what uses it (nothing is re-exported here):

- ``placing``: checking and placing a call-off, once per idempotency key;
- ``details``: what the buyer gives, and the checks on it that need no lock;
- ``route``: the direct-award limit;
- ``approval``: spend limits and who may approve;
- ``budgets``: funding by financial year, standing authorisations, budgets given back;
- ``capacity``: units by month against the provider's capacity;
- ``funding``: co-funders' answers, re-splitting, approval, sending to the provider;
- ``responses``: the provider's answer, expiry, cancellation;
- ``delivery``: delivery and completion;
- ``variations``: changes to quantity or end date;
- ``call_offs``: what they all share (reference, value, who may act, audit, emailing the buyer).
"""
