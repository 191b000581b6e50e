"""Demo data: a realistic world to try the marketplace in (`flask demo load`, `flask demo users`).

One module for each thing the demo builds, loaded in this order by ``world.load_demo_data``:

- ``people``: who is in the world (organisations, people and their roles; the one password);
- ``organisations``: creates them, audited, with what e-invoices need;
- ``accreditation`` and ``applications``: the live DPS, its members and applications in every state;
- ``catalogue`` (and ``scale`` for benchmarks): published listings with prices;
- ``orders``: budgets and call-offs in every state; ``invoices``: billing, claims and payments;
  ``funding``: a standing authorisation;
- ``cli``: the `flask demo` commands.

The demo is app-level: it may import every feature, and no feature imports it.
"""
