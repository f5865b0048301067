"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from config.heap import long_lived_enable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
long_lived_enable("wsgi start-up")  # collections skip what start-up loaded (config/heap.py)
