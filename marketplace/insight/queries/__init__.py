"""The insight feature's reads."""
