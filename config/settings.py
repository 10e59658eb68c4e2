"""Settings come from the environment; every value has an embedded default.

With nothing set the application runs on SQLite under ``var/``, runs Celery
tasks eagerly in-process and "pushes" node files into a local directory, so
it starts on a bare machine. Production sets DATABASE_URL, CELERY_BROKER_URL,
REDIS_URL, DJANGO_SECRET_KEY and OVERLAY_TRANSPORT=ssh.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

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
    "axes",
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
    "config.security.SecretsKeyErrorMiddleware",
    # Last, as django-axes asks: it turns a lockout into the login page's answer.
    "axes.middleware.AxesMiddleware",
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

# --- Security: HTTPS, cookies, headers ----------------------------------------
# With debug off every HTTPS protection is on unless turned off here (for example when
# the proxy in front already redirects to HTTPS); see README, "Production settings".
_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=_SECURE)
SECURE_REDIRECT_EXEMPT = env.list("DJANGO_SECURE_REDIRECT_EXEMPT", default=[])
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31_536_000 if _SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS",
                                          default=_SECURE)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=_SECURE)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=_SECURE)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=_SECURE)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = env.str("DJANGO_X_FRAME_OPTIONS", default="DENY")
SECURE_REFERRER_POLICY = env.str("DJANGO_SECURE_REFERRER_POLICY", default="same-origin")
# "X-Forwarded-Proto,https": the header and value by which the reverse proxy in front
# says the request came over HTTPS. Only set it behind a proxy that always sets the header.
_PROXY_SSL_HEADER = env.list("DJANGO_SECURE_PROXY_SSL_HEADER", default=[])
if _PROXY_SSL_HEADER:
    if len(_PROXY_SSL_HEADER) != 2:
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER is a header and a value, e.g. X-Forwarded-Proto,https")
    _header = _PROXY_SSL_HEADER[0].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (_header if _header.startswith("HTTP_") else f"HTTP_{_header}",
                               _PROXY_SSL_HEADER[1].strip())
# Reverse proxies in front that append to X-Forwarded-For; 0 trusts no forwarded address.
# Login lockout and API rate limits count per client address (config/security.py).
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)

# --- Login lockout (django-axes) and API rate limits ---------------------------
# API throttle counters (and with Redis, login failures) live in this cache: Redis when
# REDIS_URL is set, else this process's memory.
RATELIMIT_CACHE = "ratelimit"
CACHES[RATELIMIT_CACHE] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
     "KEY_PREFIX": "ratelimit"} if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit"}
)
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out login before checking it
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15.0))
# Failures count per (username, client address), whether or not the user exists.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Redis is shared by every server process; without it attempts are kept in the
# database, since a per-process memory cache would multiply the allowed attempts.
AXES_HANDLER = ("axes.handlers.cache.AxesCacheHandler" if REDIS_URL
                else "axes.handlers.database.AxesDatabaseHandler")
AXES_CACHE = RATELIMIT_CACHE
AXES_CLIENT_IP_CALLABLE = "config.security.client_ip"
AXES_LOCKOUT_CALLABLE = "config.security.login_lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failed attempts are kept; successful logins are not logged
AXES_ENABLE_ADMIN = False  # without Redis, `manage.py axes_reset_username NAME` lifts a block
AXES_VERBOSE = False  # no banner on every command; lockouts are still logged


def _rate(variable: str, default: str) -> str | None:
    """A DRF rate such as "600/min"; an empty value means no limit."""
    return env.str(variable, default=default) or None


# Requests per authenticated user, per address without credentials, and wrong API
# tokens per address (config/security.py). Read per request, so tests can change them.
API_THROTTLE_RATES = {
    "user": _rate("API_THROTTLE_USER", "600/min"),
    "anon": _rate("API_THROTTLE_ANON", "60/min"),
    "token_failures": _rate("API_THROTTLE_TOKEN_FAILURES", "10/min"),
}

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
        # DRF's TokenAuthentication, refusing an address that sent too many wrong tokens.
        "config.security.ThrottledTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["config.security.UserRateThrottle",
                                 "config.security.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": API_THROTTLE_RATES,
    "EXCEPTION_HANDLER": "core.api.errors.api_exception_handler",
}
# The project functions core's admin and API glue call: core imports no project app, so
# they are named here (see core/hooks.py).
CORE_HOOKS = {
    "save": "overlays.services.save",
    "delete": "overlays.services.delete",
    "is_vdc_admin": "vdc.models.is_vdc_admin",
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

# Where managed files live on nodes: overrides of overlays.filegroups.DEFAULT_PATHS by
# path key (usbkey_config, ike_config, ike_preshared, ipsec_policy, ipf_overlays,
# ipf_admin); an unknown key is an error. ARP tables: each rule names its own file.
OVERLAY_PATHS: dict[str, str] = {}

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
