"""Settings of the example Django project (sqlite, no secrets: an example, not a deployment)."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = 'example-only-not-a-secret'
DEBUG = True
ALLOWED_HOSTS = ['*']

INSTALLED_APPS = [
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'notes',
]

MIDDLEWARE = ['django.contrib.sessions.middleware.SessionMiddleware']

ROOT_URLCONF = 'mysite.urls'
WSGI_APPLICATION = 'mysite.wsgi.application'

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': BASE_DIR / 'db.sqlite3',
        # the master's children write concurrently (a worker for the cron entry, the spooler)
        'OPTIONS': {'timeout': 20},
    }
}

DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'

# Django exports TIME_ZONE as TZ when it loads the settings: the cron entries of task.py run in
# this zone, under uWSGI as under uwsgidecorators.
TIME_ZONE = 'UTC'
USE_TZ = True
