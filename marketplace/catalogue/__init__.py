"""Service listings, prices, capacity, search and rate cards."""
