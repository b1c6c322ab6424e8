# A Django project with no extra settings for proxies: request.is_secure() and
# build_absolute_uri() must be right behind nginx from wsgi.url_scheme and SCRIPT_NAME alone.
SECRET_KEY = "edge-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
