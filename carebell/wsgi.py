"""WSGI entry point for production web processes (gunicorn carebell.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
application = get_wsgi_application()
