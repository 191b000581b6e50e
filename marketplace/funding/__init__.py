"""Money run by its owners: a commissioning organisation's approvers set its budgets per
financial year and change them with a reason (kept as each budget's history); a co-funder's
approvers give, change and revoke standing authorisations for a lead buyer."""
