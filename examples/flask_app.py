"""A small Flask application for alicorn (or gunicorn).

    alicorn -w 2 -b 127.0.0.1:8000 flask_app:app

Routes:
    GET  /      -> "Hello from Flask!" (text/plain)
    GET  /json  -> a small JSON document
    POST /echo  -> the submitted form fields, as JSON
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask!", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/json")
def json_document():
    return jsonify(message="Hello from Flask!", server="alicorn", items=[1, 2, 3])


@app.post("/echo")
def echo():
    return jsonify(form=request.form.to_dict(flat=True))


application = app
