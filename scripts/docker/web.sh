#!/usr/bin/env bash
set -euo pipefail
python manage.py migrate --noinput
# gthread workers keep browsers' connections alive between the desk's requests (bench/review_load.py).
exec gunicorn config.wsgi --bind 0.0.0.0:8000 --workers "${WEB_CONCURRENCY:-3}" --timeout 60 \
  --worker-class gthread --threads 4 --access-logfile -
