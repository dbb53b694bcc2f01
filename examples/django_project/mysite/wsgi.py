"""The WSGI application (`module = mysite.wsgi` in uwsgi.ini): served by uWSGI, gunicorn... The
uwsgidecorators master does not serve requests and says so once for this option."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')

application = get_wsgi_application()
