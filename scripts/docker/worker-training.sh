#!/usr/bin/env bash
# Training runs one at a time, prefetching nothing: a long run never holds a second message.
set -euo pipefail
exec celery -A config worker -Q training -n "training@%h" --concurrency 1 \
  --prefetch-multiplier 1 --loglevel "${LOG_LEVEL:-INFO}"
