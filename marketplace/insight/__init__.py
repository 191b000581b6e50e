"""Commissioning insight and open data: who is VCSE and SME as of when (the history is kept in
``accounts``), the spend ledger and its monthly roll-up, spend and VCSE-share reports with
charts, the market map and forward plan, the statutory transparency exports, and the OCDS feed
of the dynamic market, its call-offs and further competitions."""
