"""Django settings for Handoff, read from the environment (see .env.example and the README).

Two modes: ``HANDOFF_ENV=development`` (the default: embedded SQLite and a broker that needs no
server, so ``make run`` works on a bare machine) and ``HANDOFF_ENV=production`` (a real secret
key is required, DEBUG must be off, cookies are secure).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("HANDOFF_VAR_DIR", BASE_DIR / "var"))

_DEV_SECRET_KEY = "django-insecure-handoff-development-only"  # noqa: S105 - refused in production


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable."""
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


HANDOFF_ENV = os.environ.get("HANDOFF_ENV", "development").strip().lower()
if HANDOFF_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"HANDOFF_ENV must be 'development' or 'production', not {HANDOFF_ENV!r}"
    )
PRODUCTION = HANDOFF_ENV == "production"

DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = os.environ.get("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET_KEY)
if PRODUCTION:
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 40:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a random string of at least 40 characters in production "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
        )
    if DEBUG:
        raise ImproperlyConfigured("DEBUG=True is refused when HANDOFF_ENV=production")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "reviewapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'handoff.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + IMMEDIATE transactions let the web process and the worker write the same file
    # without "database is locked" errors (https://docs.djangoproject.com/en/5.2/ref/databases/).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file (not :memory:) so that a real worker process can see the test database.
    _db_file = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(_db_file.with_name(f"test-{_db_file.name}"))}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters travel apart from the SQL text, so a statement run DB_PREPARE_THRESHOLD times
    # on a connection becomes a prepared statement and PostgreSQL stops parsing and planning it
    # again: the desk's decision round trip costs PostgreSQL ~40% less CPU (bench/review_cost.py).
    # 0 turns preparing off (e.g. behind PgBouncer in transaction mode).
    # https://docs.djangoproject.com/en/5.2/ref/databases/#server-side-parameters-binding
    _prepare_threshold = int(os.environ.get("DB_PREPARE_THRESHOLD", "5"))
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": True,
        "prepare_threshold": _prepare_threshold if _prepare_threshold > 0 else None,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ---------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 3600)))

# --- I18N / time ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from the app folders without collectstatic
# Media is never served as a public folder: images go through a permission-checked view.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-public/"
ARTIFACTS_ROOT = Path(os.environ.get("ARTIFACTS_ROOT", VAR_DIR / "artifacts"))
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
HANDOFF_MAX_UPLOAD_BYTES = int(os.environ.get("HANDOFF_MAX_UPLOAD_BYTES", str(20 * 1024 * 1024)))
HANDOFF_MAX_IMAGE_PIXELS = int(os.environ.get("HANDOFF_MAX_IMAGE_PIXELS", str(40_000_000)))
# Video clips (issue 19): what one clip may cost to decode; past any limit it is refused (4xx).
HANDOFF_VIDEO_MAX_SECONDS = float(os.environ.get("HANDOFF_VIDEO_MAX_SECONDS", "60"))
HANDOFF_VIDEO_MAX_PIXELS = int(os.environ.get("HANDOFF_VIDEO_MAX_PIXELS", str(1920 * 1080)))
HANDOFF_VIDEO_MAX_FRAMES = int(os.environ.get("HANDOFF_VIDEO_MAX_FRAMES", "1800"))

# --- Celery ------------------------------------------------------------------------------------
BROKER_DIR = Path(os.environ.get("HANDOFF_BROKER_DIR", VAR_DIR / "broker"))
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport: a real broker that needs no server (the embedded default).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # kombu sleeps this long whenever the queue folder looked empty; with its default (1 s)
        # and prefetch 1 a worker took about one message a second.
        "polling_interval": 0.1,
    }
else:
    # Longer than the longest training run, so Redis never redelivers a run still in progress.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(6 * 3600)))
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "reviewapp.train_model": {"queue": "training"},
    "reviewapp.export_edge_bundle": {"queue": "training"},  # torch + onnx, minutes of CPU
}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Security ---------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # On by default so that `check --deploy` is clean; set 0 if the domain must stay off the
    # browsers' preload lists (the header alone submits nothing).
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)

# Content security policy (django-csp): the pages load only their own static JS and CSS; JSON
# data blocks (json_script) are not scripts. Inline style *attributes* (progress bars) are
# allowed, inline <style> and <script> elements are not.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "style-src-attr": ["'unsafe-inline'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- REST API (issue 7; see reviewapp/api) ------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["reviewapp.api.auth.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["reviewapp.api.auth.IsApiClient"],
    "DEFAULT_THROTTLE_CLASSES": ["reviewapp.api.auth.ApiClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "reviewapp.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Handoff API",
    "DESCRIPTION": "Submit images, read decisions (the model's or a human's), export labels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
HANDOFF_API_THROTTLE_RATE = os.environ.get("HANDOFF_API_THROTTLE_RATE", "600/min")
HANDOFF_API_MAX_REQUEST_BYTES = int(
    os.environ.get("HANDOFF_API_MAX_REQUEST_BYTES", str(64 * 1024 * 1024))
)
# Django's own cap on a body read into memory follows it: a batch of HANDOFF_API_MAX_BATCH base64
# images must fit (Django's default, 2.5 MB, refused 200 photos with a bare HTML 400).
DATA_UPLOAD_MAX_MEMORY_SIZE = HANDOFF_API_MAX_REQUEST_BYTES
# Entries per batch request (issue 17: bulk ingest stores a batch in one transaction).
HANDOFF_API_MAX_BATCH = int(os.environ.get("HANDOFF_API_MAX_BATCH", "200"))
HANDOFF_API_MAX_WAIT_SECONDS = float(os.environ.get("HANDOFF_API_MAX_WAIT_SECONDS", "30"))
HANDOFF_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("HANDOFF_WEBHOOK_TIMEOUT_SECONDS", "10"))
HANDOFF_WEBHOOK_MAX_RETRIES = int(os.environ.get("HANDOFF_WEBHOOK_MAX_RETRIES", "8"))
HANDOFF_WEBHOOK_BACKOFF_SECONDS = int(os.environ.get("HANDOFF_WEBHOOK_BACKOFF_SECONDS", "30"))

# --- Alert e-mail (reviewapp/review/alerts.py) ----------------------------------------------------
# SMTP when EMAIL_HOST is set; otherwise the console (a bare `make run`), or any backend by name
# (tests use the file backend: EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend).
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if os.environ.get("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "") == "1"
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "handoff@localhost")
HANDOFF_SITE_URL = os.environ.get("HANDOFF_SITE_URL", "http://localhost:8000").rstrip("/")

# --- Logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Handoff ------------------------------------------------------------------------------------
HANDOFF_DEMO_ADMIN_PASSWORD = os.environ.get("HANDOFF_DEMO_ADMIN_PASSWORD", "")
HANDOFF_DEMO_REVIEWER_PASSWORD = os.environ.get("HANDOFF_DEMO_REVIEWER_PASSWORD", "")
HANDOFF_PREDICT_DEVICE = os.environ.get("HANDOFF_PREDICT_DEVICE", "cpu")
HANDOFF_TRAIN_DEVICE = os.environ.get("HANDOFF_TRAIN_DEVICE", "")  # empty: CUDA when available
HANDOFF_REVIEW_LEASE_SECONDS = int(os.environ.get("HANDOFF_REVIEW_LEASE_SECONDS", "300"))
# A training worker beats every few seconds; a run silent for longer than the stale limit is
# failed by the reaper (reviewapp.reap_training_runs, scheduled by `manage.py beat_setup`).
HANDOFF_TRAINING_HEARTBEAT_SECONDS = float(
    os.environ.get("HANDOFF_TRAINING_HEARTBEAT_SECONDS", "10")
)
HANDOFF_TRAINING_STALE_SECONDS = float(os.environ.get("HANDOFF_TRAINING_STALE_SECONDS", "120"))
# Drift monitoring (reviewapp/monitoring.py): a check every N champion predictions over the last
# `WINDOW` items (and today's); the family-wise false-alarm rate over a horizon of items.
HANDOFF_DRIFT_WINDOW = int(os.environ.get("HANDOFF_DRIFT_WINDOW", "200"))
HANDOFF_DRIFT_CHECK_EVERY = int(os.environ.get("HANDOFF_DRIFT_CHECK_EVERY", "50"))
HANDOFF_DRIFT_FALSE_ALARM = float(os.environ.get("HANDOFF_DRIFT_FALSE_ALARM", "0.05"))
HANDOFF_DRIFT_HORIZON_ITEMS = int(os.environ.get("HANDOFF_DRIFT_HORIZON_ITEMS", "2000"))

# --- Operations (issue 8): metrics, probes, structured logs -------------------------------------
# Prometheus scrapes /metrics with "Authorization: Bearer <token>"; empty: staff sessions only.
HANDOFF_METRICS_TOKEN = os.environ.get("HANDOFF_METRICS_TOKEN", "")
# Probes answer over plain HTTP inside the deployment (no TLS redirect for them).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# A Celery worker touches this file while it is connected to the broker; `manage.py
# worker_ready` (the compose healthcheck) checks that it is fresh.
HANDOFF_WORKER_HEARTBEAT_FILE = os.environ.get(
    "HANDOFF_WORKER_HEARTBEAT_FILE", str(VAR_DIR / "worker.heartbeat")
)
HANDOFF_WORKER_HEARTBEAT_SECONDS = float(os.environ.get("HANDOFF_WORKER_HEARTBEAT_SECONDS", "15"))
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'plain' or 'json', not {LOG_FORMAT!r}")
if LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "config.logformat.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
    # Celery workers keep Django's handlers instead of installing their own plain ones.
    CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Login throttling (issue 10; django-axes) ---------------------------------------------------
# Failed sign-ins are counted per (user name, client address); at the limit that pair is refused
# (429, templates/registration/locked_out.html) until the cool-off ends or an admin deletes the
# access attempt. API tokens never go through these backends, so machine clients are unaffected.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as django-axes requires
# Django's database sessions, read with one plain statement per request (measured: docs/
# benchmarks.md, "Fast paths"; tested equal to Django's store: tests/reviewapp/fastpaths/).
SESSION_ENGINE = "reviewapp.fastpaths.sessions"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "reviewapp.fastpaths.sessions.LeanModelBackend",  # ModelBackend, its user lookup one statement
]
AXES_FAILURE_LIMIT = int(os.environ.get("HANDOFF_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("HANDOFF_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "reviewapp.site.views.login_locked_out"
LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # lockouts (WARNING), not every sign-in

# --- Resilience (issue 10; see reviewapp/dispatch.py and reviewapp/media.py) ---------------------
# An item whose prediction task was sent is re-sent by the sweeper when no prediction has run
# after this many seconds (a lost message); after a broker error it is re-sent at the next sweep.
HANDOFF_PREDICTION_REQUEUE_SECONDS = int(
    os.environ.get("HANDOFF_PREDICTION_REQUEUE_SECONDS", "600")
)

# --- Batched prediction (issue 17; reviewapp/intake/batching.py, reviewapp/intake/batcher.py) ---
# A prediction worker claims up to BATCH due items (waiting up to BATCH_WAIT_MS to fill one),
# decodes them on DECODE_THREADS threads and runs one forward per model version; its lease on
# the claimed items lasts LEASE_SECONDS. The web process's `wait` batcher gathers requests for
# at most API_BATCH_WAIT_MS or API_BATCH items before one forward.
# Claimed and written per transaction; the forward runs in chunks of mlcore.precision's batch size.
# 256 rather than 64: the per-batch statements then cost a quarter as much per item
# (bench.predict_pipeline, docs/benchmarks.md).
HANDOFF_PREDICT_BATCH = int(os.environ.get("HANDOFF_PREDICT_BATCH", "256"))
HANDOFF_PREDICT_BATCH_WAIT_MS = float(os.environ.get("HANDOFF_PREDICT_BATCH_WAIT_MS", "20"))
HANDOFF_PREDICT_DECODE_THREADS = int(os.environ.get("HANDOFF_PREDICT_DECODE_THREADS", "4"))
HANDOFF_PREDICTION_LEASE_SECONDS = float(os.environ.get("HANDOFF_PREDICTION_LEASE_SECONDS", "30"))
HANDOFF_API_BATCH = int(os.environ.get("HANDOFF_API_BATCH", "16"))
HANDOFF_API_BATCH_WAIT_MS = float(os.environ.get("HANDOFF_API_BATCH_WAIT_MS", "20"))
# A `wait` request is answered while a backlog drains (issue 17): the web's batcher runs its
# forwards on API_PREDICT_THREADS torch threads, and prediction workers (every Celery worker
# but the training queue's) lower their CPU priority by PREDICT_WORKER_NICE (config/priority.py).
HANDOFF_API_PREDICT_THREADS = int(os.environ.get("HANDOFF_API_PREDICT_THREADS", "1"))
HANDOFF_PREDICT_WORKER_NICE = int(os.environ.get("HANDOFF_PREDICT_WORKER_NICE", "10"))
