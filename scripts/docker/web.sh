#!/usr/bin/env bash
set -euo pipefail
python manage.py migrate --noinput
python manage.py prediction_schedule  # beat re-sends predictions the broker missed
exec gunicorn config.wsgi --bind 0.0.0.0:8000 --workers "${WEB_CONCURRENCY:-3}" --timeout 60 \
  --access-logfile -
