"""Account forms (shape only: types, required, lengths, choices), one module per area."""
