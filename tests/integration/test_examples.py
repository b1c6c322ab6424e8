"""The shipped examples (examples/hello.py, examples/flask_app.py) served by alicorn, and by
Debian's gunicorn too: the examples must run unchanged under both."""

import json
import shutil
import unittest
from urllib.parse import urlencode

from harness import EXAMPLES_DIR, AlicornTestCase

GUNICORN = shutil.which("gunicorn", path="/usr/bin")


class ExamplesMixin:
    program = None  # alicorn

    def serve(self, app, workers=1):
        return self.start_server(app, ["--chdir", EXAMPLES_DIR], workers=workers,
                                 cwd=EXAMPLES_DIR, program=self.program)

    def test_hello_example(self):
        server = self.serve("hello:app", workers=2)
        headers = self.assertServesHello(server)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)

    def test_hello_example_application_alias(self):
        server = self.serve("hello:application")
        self.assertServesHello(server)

    def test_flask_index(self):
        server = self.serve("flask_app:app")
        status, headers, body, _ = self.get(server, "/")
        self.assertEqual((status, body), (200, b"Hello from Flask!"), server.describe())
        self.assertEqual(headers.get("content-length"), str(len(body)))

    def test_flask_json(self):
        server = self.serve("flask_app:app")
        status, headers, body, _ = self.get(server, "/json")
        self.assertEqual(status, 200, server.describe())
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        doc = json.loads(body)
        self.assertEqual(doc["message"], "Hello from Flask!")
        self.assertEqual(doc["items"], [1, 2, 3])

    def test_flask_echo_form(self):
        server = self.serve("flask_app:app")
        form = {"name": "alicorn", "note": "a b&c=d"}
        status, _, body, _ = self.get(
            server, "/echo", method="POST", body=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, server.describe())
        self.assertEqual(json.loads(body), {"form": form})

    def test_flask_not_found(self):
        server = self.serve("flask_app:app")
        status, _, _, _ = self.get(server, "/missing")
        self.assertEqual(status, 404)


class ExamplesUnderAlicorn(ExamplesMixin, AlicornTestCase):
    pass


@unittest.skipUnless(GUNICORN, "Debian's gunicorn is not installed")
class ExamplesUnderGunicorn(ExamplesMixin, AlicornTestCase):
    program = GUNICORN


if __name__ == "__main__":
    unittest.main()
