"""A bare Flask "hello world": the baseline that `make bench` compares the marketplace with."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"
