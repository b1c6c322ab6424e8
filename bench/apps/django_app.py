"""A minimal Django project in one module: one JSON view, CommonMiddleware only, no database.

Used by bench/run.py ("django" scenario) and bench/inproc.py; every Python server loads it the
same way (module:app). GET /json -> {"message": "Hello from Django!", ...} as JSON.
"""

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="alicorn-bench-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        # CommonMiddleware sets Content-Length (uWSGI's http11-socket needs it to keep alive)
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402


def json_view(request):
    return JsonResponse({"message": "Hello from Django!", "server": "bench", "items": [1, 2, 3]})


urlpatterns = [path("json", json_view)]

app = application = get_wsgi_application()
