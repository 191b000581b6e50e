"""The invoice rules, by concern: the monthly run (monthly_run), outcome invoices
(outcome_billing), billing on completion (completion), issuing and settling (issuing), credit
notes (credit_notes), overdue notices (overdue), recharges (recharging) and what they share
(common)."""
