"""A small Flask site for alicorn's integration tests: routing with variables, JSON in and out,
a form POST, a multipart upload (size and SHA-256 of each file), a streamed response, send_file,
a 404 and an abort(403)."""

import hashlib
import os

from flask import (Flask, Response, abort, jsonify, request, send_file,
                   stream_with_context)

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024


@app.route("/")
def index():
    return "Flask on alicorn"


@app.route("/hello/<name>")
def hello(name):
    return "Hello, %s!" % name


@app.route("/items/<int:item_id>/<path:rest>")
def item(item_id, rest):
    return jsonify(id=item_id, id_type=type(item_id).__name__, rest=rest,
                   args=request.args.to_dict(flat=False))


@app.route("/json", methods=["POST"])
def json_echo():
    data = request.get_json()
    return jsonify(received=data, sum=sum(data.get("numbers", [])),
                   content_type=request.content_type)


@app.route("/form", methods=["POST"])
def form():
    return jsonify(form=request.form.to_dict(flat=False), method=request.method)


@app.route("/upload", methods=["POST"])
def upload():
    files = {}
    for field, storage in request.files.items(multi=True):
        data = storage.read()
        files.setdefault(field, []).append({
            "filename": storage.filename,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        })
    return jsonify(files=files, form=request.form.to_dict(flat=False))


@app.route("/stream")
def stream():
    count = int(request.args.get("count", "50"))

    def generate():
        # stream_with_context keeps `request` usable while the body is produced
        who = request.args.get("who", "nobody")
        for i in range(count):
            yield "line %d for %s\n" % (i, who)

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.route("/file")
def file():
    path = request.args["path"]
    if not os.path.isabs(path):
        abort(400)
    return send_file(path, mimetype="application/octet-stream")


@app.route("/forbidden")
def forbidden():
    abort(403)
