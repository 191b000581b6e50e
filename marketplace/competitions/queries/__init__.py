"""Read-only loaders of the competition pages and the home page, one module per concern."""
