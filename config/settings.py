"""Settings come from the environment; every value has an embedded default.

With nothing set the application runs on SQLite under ``var/``, runs Celery
tasks eagerly in-process and "pushes" node files into a local directory, so
it starts on a bare machine. Production sets DATABASE_URL, CELERY_BROKER_URL,
REDIS_URL, DJANGO_SECRET_KEY and OVERLAY_TRANSPORT=ssh.
"""

import contextlib
import ipaddress
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
    # Swagger UI and ReDoc from the application's own static files (nothing from a CDN).
    "drf_spectacular_sidecar",
    "auditlog",  # the audit trail (config/audit.py)
    "nodes",
    "vdc",
    "overlays",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ in every mode, DEBUG off included (README, "Static files").
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Tags audit log entries with the request's user, address and entry point.
    "config.audit.AuditMiddleware",
    # Auditors read everything and change nothing: every unsafe request of theirs is a 403.
    "core.roles.AuditorReadOnlyMiddleware",
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
                "overlays.pages.context.roles",
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
    # Write-ahead log: readers (pages, the API) do not wait for a sync's write, and a commit
    # does not wait for the disk (synchronous=NORMAL: after a power cut the last commits may
    # be lost, never the database's consistency; a lost deployment record is a resync).
    DATABASES["default"]["OPTIONS"].setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
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
# WhiteNoise serves STATIC_ROOT (`manage.py collectstatic`), and with this on also the
# apps' static directories directly, so a fresh clone needs no collectstatic.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
if WHITENOISE_USE_FINDERS and not STATIC_ROOT.exists():
    # No collectstatic yet is normal then; an empty directory keeps WhiteNoise from warning.
    with contextlib.suppress(OSError):
        STATIC_ROOT.mkdir(parents=True)
LOGIN_URL = "/accounts/login/"
# Operators (superusers, auditors) land on /ops/, vDC admins on their vDCs.
LOGIN_REDIRECT_URL = "ops:landing"

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
# Probes and the metrics scraper often speak plain HTTP to the process itself.
SECURE_REDIRECT_EXEMPT = env.list("DJANGO_SECURE_REDIRECT_EXEMPT",
                                  default=[r"^healthz$", r"^readyz$", r"^metrics$"])
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
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Failure handling (README, "Failure modes"). A task is acknowledged after it ran, and given
# back to the queue if the process running it dies; each worker takes one task at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis gives a message taken by a worker that never acknowledged it (the worker was
# killed) to another worker after this many seconds. Convergence never waits for it: the
# outbox and the reconcile queue lost syncs within OVERLAY_RECONCILE_INTERVAL. It must
# exceed the longest time a worker legitimately holds a message unacknowledged (a retry's
# countdown, at most 300 s, plus a sync), or such tasks would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "socket_connect_timeout": 5,
}
# Keep reconnecting to a broker that went away, for as long as it takes (the default gives
# up after 100 attempts and the worker exits); also at start-up.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# No remote control (`celery inspect`/`control`): its pub/sub connection to Redis is what
# made the worker exit when Redis restarted. kombu 5.7 closes the task channel twice when
# the pub/sub connection reports the loss first (while the channel waits in BRPOP); the
# second close restores unacknowledged messages through a connection already detached
# from its broker and dies with "AttributeError: 'NoneType' object has no attribute
# 'hostname'" (an "Unrecoverable error"). Run workers with --without-gossip
# --without-mingle too (README): they open more broker channels to no use here.
CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# A web process publishing while the broker is down gives up after about a second (the
# request stays in the outbox), instead of holding the HTTP request for tens of seconds.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2,
                                    "interval_step": 0.3, "interval_max": 0.5}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 5
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 3, "interval_start": 0, "interval_step": 1,
                     "interval_max": 1},
}

# --- REST API -----------------------------------------------------------------
# The largest request body read (bytes): an API body over it is a 413 in the API's error
# shape. A state file of 20,000 vNICs is about 3 MB; the command-line import has no limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        # DRF's TokenAuthentication, refusing an address that sent too many wrong tokens.
        "config.security.ThrottledTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # ?limit= and ?offset= within bounds, or a 400 (core/api/pagination.py).
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    # JSON only, nested at most core.jsondoc.MAX_JSON_DEPTH levels; larger bodies than
    # DATA_UPLOAD_MAX_MEMORY_SIZE are 413s in the API's error shape.
    "DEFAULT_PARSER_CLASSES": ["core.api.parsers.JsonParser"],
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
    # drf-spectacular-sidecar: the UI's scripts, styles and icon come from /static/.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Audit trail (django-auditlog; config/audit.py) ------------------------------
# Every create, update and delete of these models is logged with its before and after
# values; the excluded fields (secrets, bookkeeping) never appear in the log.
_AUDIT_EXCLUDED = {  # model: fields never logged (secrets; bookkeeping that syncs write)
    "nodes.node": ["updated_at", "sync_status", "sync_message", "desired_generation",
                   "synced_generation", "refreshed_at", "loaded_overlay_rules",
                   # reverse one-to-ones: reading them while saving caches "none" on the
                   # node, which then hides an address created later in the same request
                   "admin_overlay_address", "pending_sync"],
    "vdc.vdc": ["updated_at"],
    "overlays.overlayrule": ["updated_at"],
    "overlays.virtualnetwork": ["updated_at"],
    "overlays.vnic": ["updated_at"],
    "overlays.adminoverlay": ["updated_at"],
    "overlays.adminoverlayaddress": [],
    "overlays.firewallsettings": ["updated_at"],
    "overlays.ipseckey": ["secret_encrypted"],
    "overlays.keyrotation": [],
    "auth.user": ["password", "last_login"],
    "auth.group": [],
}
AUDITLOG_INCLUDE_TRACKING_MODELS = tuple(
    {"model": model, "exclude_fields": fields} for model, fields in _AUDIT_EXCLUDED.items())
AUDITLOG_STORE_JSON_CHANGES = True  # before/after values as JSON, not their str()
# Entries older than this many days are deleted by `manage.py overlay audit-prune`
# (run it daily, e.g. from cron); 0 keeps them for ever.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)

# --- Metrics and health (config/metrics.py, config/health.py) -------------------
# With a token, /metrics answers requests carrying "Authorization: Bearer <token>" (and
# superusers' sessions); without one, only loopback clients and superusers.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

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


def _management_sources(values: list[str]) -> list[str]:
    """IPv4 addresses or networks, normalised; refused at start-up rather than at a push."""
    parsed = []
    for value in values:
        try:
            network = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"OVERLAY_MANAGEMENT_SOURCES: {value!r} is not an "
                                       "address or network.") from None
        if network.version != 4:
            raise ImproperlyConfigured(f"OVERLAY_MANAGEMENT_SOURCES: {value!r} is not IPv4; "
                                       "the allow-list on external0 is IPv4.")
        parsed.append(str(network.network_address) if network.num_addresses == 1
                      else str(network))
    return list(dict.fromkeys(parsed))


# The management server's own source addresses, always let in by every node's allow-list
# (comma separated addresses or networks). Empty: the addresses the SSH connections left
# from at each node's last sync (Node.management_source).
OVERLAY_MANAGEMENT_SOURCES = _management_sources(
    [v for v in env.list("OVERLAY_MANAGEMENT_SOURCES", default=[]) if v.strip()])
# The PDC the management server sits in: nodes of other PDCs are managed through their
# external interface. Empty: the PDC of the nodes whose admin network holds a management
# source, when exactly one PDC does; otherwise unknown.
OVERLAY_MANAGEMENT_PDC = env.str("OVERLAY_MANAGEMENT_PDC", default="").strip()

# Where managed files live on nodes: overrides of overlays.filegroups.DEFAULT_PATHS by
# path key (usbkey_config, ike_config, ike_preshared, ipsec_policy, ipf_overlays,
# ipf_admin); an unknown key is an error. ARP tables: each rule names its own file.
OVERLAY_PATHS: dict[str, str] = {}
# The directory every rule's ARP table lives in: a rule's arp_file must be a plain file name
# ending in .json directly in it (overlays.rulestring.check_arp_file).
OVERLAY_ARP_DIRECTORY = env.str("OVERLAY_ARP_DIRECTORY", default="/opt/custom/networking/")

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
# Syntax checks run on the node against each uploaded file (still under its temporary
# name, "{file}") before any file of the sync replaces a live one, by path key (as in
# OVERLAY_PATHS). A check that exits non-zero keeps every old file; a key left out is not
# checked on the node. The pre-shared keys file is never handed to a command: it is
# parsed back here. Skipped by the local transport, which runs no command.
OVERLAY_CHECK_COMMANDS = {
    "ipf_overlays": "ipf -n -f {file}",
    "ipf_admin": "ipf -n -f {file}",
    "ike_config": "/usr/lib/inet/in.iked -c -f {file}",
    "ipsec_policy": "ipsecconf -c {file}",  # never -f: that flushes the live policy
}
# Commit confirmed: before the ipsec and ipfilter reloads (which can cut the management
# server off) the node keeps its previous files and starts a revert timer of its own; the
# manager cancels it over a NEW SSH connection after the reloads. Unconfirmed within this
# many seconds, the node restores its previous files and reloads them. 0: off.
OVERLAY_CONFIRM_TIMEOUT = env.float("OVERLAY_CONFIRM_TIMEOUT", default=120.0)
# Where the node keeps the previous files, the timer script and its verdict (mode 0700;
# it holds a copy of the pre-shared keys while a change awaits confirmation).
OVERLAY_CONFIRM_DIRECTORY = env.str("OVERLAY_CONFIRM_DIRECTORY",
                                    default="/opt/custom/etc/overlay-confirm")

# Every change schedules syncs of the nodes it affects; False stages changes until
# `manage.py overlay update`. Bursts within OVERLAY_SYNC_DELAY seconds coalesce.
OVERLAY_AUTO_SYNC = env.bool("OVERLAY_AUTO_SYNC", default=True)
OVERLAY_SYNC_DELAY = env.float("OVERLAY_SYNC_DELAY", default=1.0)
# A deployment fails rather than hangs; retries of transient SSH errors back off
# exponentially from OVERLAY_SYNC_RETRY_BACKOFF seconds.
OVERLAY_SYNC_MAX_RETRIES = env.int("OVERLAY_SYNC_MAX_RETRIES", default=3)
OVERLAY_SYNC_RETRY_BACKOFF = env.float("OVERLAY_SYNC_RETRY_BACKOFF", default=5.0)
# One sync per node at a time: its lock in Redis expires this many seconds after its
# holder last renewed it (every third of it while the sync runs), so a dead worker's
# lock is free within this time.
OVERLAY_SYNC_LOCK_LEASE = env.float("OVERLAY_SYNC_LOCK_LEASE", default=15.0)
# `overlay update --now` waits this long at most for a sync of the same node running
# elsewhere (a live one finishing, or a dead one's lease running out), then does its own.
OVERLAY_SYNC_LOCK_WAIT = env.float("OVERLAY_SYNC_LOCK_WAIT", default=300.0)
# A change queues another task for a node whose request had one queued longer ago than
# this (the first may have died with its worker).
OVERLAY_SYNC_QUEUED_TTL = env.float("OVERLAY_SYNC_QUEUED_TTL", default=30.0)
# Syncs dispatched together (one change's nodes, an update, a reconcile) go to the workers
# as tasks of at most this many nodes, each rendering them from one snapshot: fewer is more
# parallel, more loads the cluster fewer times. Without a broker they run as one batch.
OVERLAY_SYNC_BATCH_SIZE = env.int("OVERLAY_SYNC_BATCH_SIZE", default=25)
OVERLAY_SYNC_KEY_PREFIX = env.str("OVERLAY_SYNC_KEY_PREFIX", default="overlay:sync")
# celery beat refreshes every node this often, which catches up nodes that were down.
OVERLAY_REFRESH_INTERVAL = env.float("OVERLAY_REFRESH_INTERVAL", default=300.0)
# celery beat queues, this often, the sync of every online node whose request has no task
# coming or whose desired files differ from those deployed (0: never); a lost message costs
# at most this long. Each run renders every node's files once.
OVERLAY_RECONCILE_INTERVAL = env.float("OVERLAY_RECONCILE_INTERVAL", default=60.0)
# Periodic IPSec key rotation under celery beat: every OVERLAY_KEY_ROTATION_CHECK_INTERVAL
# seconds, the pairs whose key is older than OVERLAY_KEY_MAX_AGE_DAYS days get a new one
# (both ends reachable) or are deferred to the next run. 0 days: off (the default).
OVERLAY_KEY_MAX_AGE_DAYS = env.float("OVERLAY_KEY_MAX_AGE_DAYS", default=0.0)
OVERLAY_KEY_ROTATION_CHECK_INTERVAL = env.float("OVERLAY_KEY_ROTATION_CHECK_INTERVAL",
                                                default=3600.0)
CELERY_BEAT_SCHEDULE = {
    "rotate old IPSec keys": {"task": "overlays.rotate_old_keys",
                              "schedule": OVERLAY_KEY_ROTATION_CHECK_INTERVAL},
} if OVERLAY_KEY_MAX_AGE_DAYS > 0 and OVERLAY_KEY_ROTATION_CHECK_INTERVAL > 0 else {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
