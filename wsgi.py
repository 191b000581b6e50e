"""WSGI entry point: `gunicorn wsgi:app`, and `flask` commands with FLASK_APP=wsgi."""

from marketplace import create_app

app = create_app()
