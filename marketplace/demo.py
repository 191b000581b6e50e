"""`flask demo …`: a realistic demo world (being built)."""

from flask.cli import AppGroup

demo_cli = AppGroup("demo", help="Demo data.")
