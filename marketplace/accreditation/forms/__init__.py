"""Accreditation forms (shape only: types, required, lengths, choices), one module per area:
arrangements (the authority's set-up), applications (a provider's) and assessment."""
