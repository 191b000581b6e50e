"""The insight feature's services: they take an actor, flush and never commit."""
