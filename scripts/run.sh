#!/usr/bin/env bash
# Start the demo on the embedded default (SQLite + filesystem broker): web, Celery workers and beat.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p var

python manage.py migrate --noinput
python manage.py collectstatic --noinput -v 0
python manage.py seed_demo
# Beat entries (idempotent): prediction sweeper, rollout checks, training reaper and retrain
# triggers, drift checks of every project.
python manage.py beat_setup

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM EXIT

celery -A config worker -Q default -n "default@%h" -c 1 --loglevel INFO &
pids+=($!)
celery -A config worker -Q training -n "training@%h" -c 1 --prefetch-multiplier 1 --loglevel INFO &
pids+=($!)
celery -A config beat --loglevel INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler \
  --pidfile= &
pids+=($!)
gunicorn config.wsgi --bind "${HANDOFF_BIND:-127.0.0.1:8000}" --workers 2 --timeout 60 \
  --worker-class gthread --threads 4 &
pids+=($!)

echo "Handoff is up on http://${HANDOFF_BIND:-127.0.0.1:8000}/ (Ctrl-C stops web and workers)"
echo "Demo logins: demo-admin and demo-reviewer (passwords printed when first created; see var/demo-credentials.txt)"
wait -n "${pids[@]}"
