"""Minimal Django settings for alicorn's integration tests: no database, no installed apps,
DEBUG off, templates from ./templates."""

import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "alicorn-integration-tests-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz"
DATABASES = {}
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [os.path.join(BASE_DIR, "templates")],
    "APP_DIRS": False,
    "OPTIONS": {},
}]
USE_I18N = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_CHARSET = "utf-8"
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
