"""Forms of the competition pages: shape only (the services decide the rules)."""
