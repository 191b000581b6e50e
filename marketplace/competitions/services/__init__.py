"""Further competition use cases, one module per step (each takes ``actor``, flushes, never
commits)."""
