"""Answers with JSON about the process serving the request: cwd, sys.path, pids (the one that
imported this module and the one serving), and the environment variables named in the query
string (?var=NAME&var=OTHER)."""

import json
import os
import sys
from urllib.parse import parse_qs

IMPORT_PID = os.getpid()


def app(environ, start_response):
    names = parse_qs(environ.get("QUERY_STRING", "")).get("var", [])
    doc = {
        "cwd": os.getcwd(),
        "sys_path": sys.path,
        "import_pid": IMPORT_PID,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "env": {name: os.environ.get(name) for name in names},
    }
    out = json.dumps(doc).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]
