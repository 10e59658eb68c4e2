"""Settings come from the environment; every value has an embedded default.

With nothing set the application runs on SQLite under ``var/``, runs Celery
tasks eagerly in-process and "pushes" node files into a local directory, so
it starts on a bare machine. Production sets DATABASE_URL, CELERY_BROKER_URL,
REDIS_URL, DJANGO_SECRET_KEY and OVERLAY_TRANSPORT=ssh.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

_DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY)
# Debug is on only for a development setup (no secret key given) unless asked for.
DEBUG = env.bool("DJANGO_DEBUG", default=SECRET_KEY == _DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "nodes",
    "vdc",
    "overlays",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)  # the embedded default must work in a fresh clone
    # Take the write lock at BEGIN so concurrent syncs wait instead of failing "locked".
    DATABASES["default"].setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
    # A file-backed test database lets a separate worker process share it.
    DATABASES["default"].setdefault("TEST", {"NAME": str(VAR_DIR / "test-db.sqlite3")})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

# --- Redis (locks, cache) -----------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -------------------------------------------------------------------
_BROKER = env.str("CELERY_BROKER_URL", default="")
# No broker: tasks run eagerly in-process; the in-memory transport keeps kombu from
# reaching for a default AMQP server.
CELERY_BROKER_URL = _BROKER or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not _BROKER
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_STORE_EAGER_RESULT = True
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND", default=_BROKER or "cache+memory://"
)
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "overlays.api.common.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Overlay manager API",
    "DESCRIPTION": "VXLAN overlays, virtual networks and the IPSec mesh between compute nodes.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Overlay manager ----------------------------------------------------------
# Keys that encrypt IPSec secrets at rest (Fernet, urlsafe base64, comma separated;
# the first encrypts, all decrypt, so keys can be rotated). Empty: derived from
# DJANGO_SECRET_KEY, which is fine for development only.
OVERLAY_SECRETS_KEYS = env.list("OVERLAY_SECRETS_KEYS", default=[])

# How files reach nodes: "local" writes under OVERLAY_LOCAL_ROOT/<hostname>/,
# "ssh" uses paramiko with each node's pinned host key.
OVERLAY_TRANSPORT = env.str("OVERLAY_TRANSPORT", default="local")
OVERLAY_LOCAL_ROOT = env.path("OVERLAY_LOCAL_ROOT", default=VAR_DIR / "node-files")
OVERLAY_SSH_PRIVATE_KEY = env.str("OVERLAY_SSH_PRIVATE_KEY", default="")
OVERLAY_SSH_TIMEOUT = env.float("OVERLAY_SSH_TIMEOUT", default=10.0)
OVERLAY_COMMAND_TIMEOUT = env.float("OVERLAY_COMMAND_TIMEOUT", default=60.0)

# Where each managed file lives on a node (ARP tables: each rule's files/config).
# SmartOS keeps /etc on a ramdisk, so the persistent copies live under /opt/custom
# and boot scripts copy them into place.
OVERLAY_PATHS = {
    "usbkey_config": "/usbkey/config",
    "ike_config": "/opt/custom/etc/ipsec/config",
    "ike_preshared": "/opt/custom/etc/ipsec/ike.preshared",
    "ipsec_policy": "/opt/custom/etc/ipsec/ipsecinit.conf",
    "ipf_overlays": "/opt/custom/etc/ipf.d/ipf.conf-020-overlays",
    "ipf_administration": "/opt/custom/etc/ipf.d/ipf.conf-090-administration",
}

# Commands run on a node after its files change, by reload action name.
OVERLAY_RELOAD_COMMANDS = {
    "network-virtual": ["svcadm refresh network/virtual"],
    "varpd": ["svcadm restart network/varpd"],
    "ipsec": [
        "cp -p /opt/custom/etc/ipsec/config /etc/inet/ike/config",
        "cp -p /opt/custom/etc/ipsec/ike.preshared /etc/inet/secret/ike.preshared",
        "cp -p /opt/custom/etc/ipsec/ipsecinit.conf /etc/inet/ipsecinit.conf",
        "svcadm refresh ipsec/policy",
        "svcadm refresh ike",
    ],
    "ipfilter": [
        "cat /opt/custom/etc/ipf.d/ipf.conf-* > /etc/ipf/ipf.conf",
        "svcadm refresh ipfilter",
    ],
}

# Every change schedules syncs of the nodes it affects; False stages changes until
# `manage.py overlay update`. Bursts within OVERLAY_SYNC_DELAY seconds coalesce.
OVERLAY_AUTO_SYNC = env.bool("OVERLAY_AUTO_SYNC", default=True)
OVERLAY_SYNC_DELAY = env.float("OVERLAY_SYNC_DELAY", default=1.0)
# A deployment fails rather than hangs; retries of transient SSH errors back off
# exponentially from OVERLAY_SYNC_RETRY_BACKOFF seconds.
OVERLAY_SYNC_MAX_RETRIES = env.int("OVERLAY_SYNC_MAX_RETRIES", default=3)
OVERLAY_SYNC_RETRY_BACKOFF = env.float("OVERLAY_SYNC_RETRY_BACKOFF", default=5.0)
OVERLAY_SYNC_LOCK_TIMEOUT = env.int("OVERLAY_SYNC_LOCK_TIMEOUT", default=600)
OVERLAY_SYNC_KEY_PREFIX = env.str("OVERLAY_SYNC_KEY_PREFIX", default="overlay:sync")
# celery beat refreshes every node this often, which catches up nodes that were down.
OVERLAY_REFRESH_INTERVAL = env.float("OVERLAY_REFRESH_INTERVAL", default=300.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
