"""Settings for the channel CRM, read from the environment.

Embedded default (nothing set but DEBUG=true): SQLite file, Celery tasks run eagerly in-process,
local-memory cache, console e-mail. Production: DATABASE_URL, REDIS_URL and SECRET_KEY.
A malformed value stops start-up with ImproperlyConfigured naming the variable.
"""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from crm.currencies import is_currency_code
from crm.env import (
    env_bool,
    env_database,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    env_time_zone,
)

# Django's generic classes (ModelAdmin, forms' ModelChoiceField, ...) take the type parameters
# the type checker reads (`admin.ModelAdmin[Partner]`) at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-used-with-debug-on"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "csp",
    "axes",
    "crm",
    "channels",
    "partners",
    "analytics",
]

MIDDLEWARE = [
    "crm.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "crm.middleware.PrivateAnswersMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Before anything reads the body (CSRF reads a POST's form).
    "crm.middleware.RequestSizeLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crm.middleware.PartnerBoundaryMiddleware",
    # After the partner boundary: a partner user's URL outside it stays a plain 404.
    "crm.middleware.QueryStringGuardMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "crm.observability.AuditNotFoundMiddleware",
    # Last, as django-axes requires: it turns a lockout into its own response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"

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
                "django.template.context_processors.i18n",
                "crm.context_processors.navigation",
            ],
        },
    },
    {
        # The longest loops of the busiest pages, included into Django templates with
        # `{% jinja %}` (crm.templating).
        "NAME": "jinja2",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "crm.templating.environment"},
    },
]

# Form widgets render through Jinja2 (Django's own widget templates for it): a select of a
# few dozen options costs a tenth of what the Django template engine takes per option.
FORM_RENDERER = "django.forms.renderers.Jinja2"

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the dashboard read while a metrics run writes; IMMEDIATE avoids
        # "database is locked" when two writers race to upgrade a read transaction.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
# A PostgreSQL read replica: the figures of the dashboard, digest, API and exports are read
# there (analytics/routers.py); writes, live lists and a metrics run's reads stay on the primary.
if env_str("DATABASE_REPLICA_URL", ""):
    DATABASES["replica"] = env_database("DATABASE_REPLICA_URL", "")
    # Tests read the replica as the primary's mirror.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["analytics.routers.ReadReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2id first (memory-hard, the algorithm OWASP recommends; a sign-in costs less than half
# the CPU of PBKDF2 at Django's iterations); the others still verify older hashes, which are
# re-hashed with Argon2 at the next sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # First: refuses every login attempt while the username or the client address is locked out.
    "axes.backends.AxesStandaloneBackend",
    "partners.auth.ActivePartnerBackend",
]

# Proxies in front of the app (a TLS proxy: 1). The client address is then read from
# X-Forwarded-For (crm.observability.client_address) for the lockout, the audit log and the API
# throttles; with 0 the header is ignored, so a client cannot choose its own address.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Lockout after repeated failures, counted per (username, client address) and per client
# address: a stranger guessing a user's password locks out only their own address, never the
# user elsewhere, and one address trying many usernames is stopped too.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "crm.observability.client_address"
AXES_VERBOSE = False

# Request bodies: at most REQUEST_MAX_MB (the signed agreement PDF of 10 MB and its form),
# market file uploads at most IMPORT_REQUEST_MAX_MB; both refused from the Content-Length before
# anything is read (crm.middleware.RequestSizeLimitMiddleware). The proxy in front repeats
# them (README, "Production"). Form fields and JSON beyond 2.5 MB are refused by Django
# (DATA_UPLOAD_MAX_MEMORY_SIZE); uploaded files above 2.5 MB go to a temporary file.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_MB", 12) * 1024 * 1024
IMPORT_REQUEST_MAX_BYTES = env_int("IMPORT_REQUEST_MAX_MB", 1400) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

CSRF_FAILURE_VIEW = "crm.views.csrf_failure"

# Invitation and password-reset links expire after three days.
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# One way to write each kind of value per language (crm/formats/): dates, moments, numbers.
FORMAT_MODULE_PATH = ["crm.formats"]
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
    ("vendor/chartjs", BASE_DIR / "node_modules" / "chart.js" / "dist"),
    ("vendor/tom-select", BASE_DIR / "node_modules" / "tom-select" / "dist"),
]
# Signed agreements and feedback attachments: outside static files, never served by URL,
# only through views that check who asks.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "private")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

REDIS_URL = env_redis_url("REDIS_URL")

if REDIS_URL:
    CACHES = {
        "default": {
            # Redis, falling back to local memory while Redis does not answer (crm.cache).
            "BACKEND": "crm.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Metrics on PostgreSQL: read one week's accounts and assignments on two connections at once,
# from one snapshot (README, "Metrics"); off reads both on a single connection.
METRICS_PARALLEL_READ = env_bool("METRICS_PARALLEL_READ", True)
# Metrics on PostgreSQL: keep the deals in the worker's memory between runs and read again only
# those changed since (README, "Metrics"); off reads every deal on every run.
METRICS_KEEP_DEALS = env_bool("METRICS_KEEP_DEALS", True)
# Metrics on PostgreSQL: keep the accounts and coverage assignments in the worker's memory
# between runs and read again only those changed since (README, "Metrics"); off reads a
# week's accounts and assignments whole, the day's rules evaluated by the database.
METRICS_KEEP_MARKET = env_bool("METRICS_KEEP_MARKET", True)

# Celery: with no REDIS_URL every task runs eagerly in-process (the embedded default).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_RESULT_EXPIRES = 24 * 3600
# A request must never hang on a dead broker: fail fast, and let the caller decide.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "max_retries": 1,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
CELERY_REDIS_SOCKET_TIMEOUT = 5
CELERY_REDIS_BACKEND_HEALTH_CHECK_INTERVAL = 30
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    "retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "timeout": 1.0}
}

EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Channel CRM <crm@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

# API tokens end after this many days unused (and at a password change, or when revoked).
API_TOKEN_IDLE_DAYS = env_int("API_TOKEN_IDLE_DAYS", 30)

# The REST API (/api/v1/): token auth for integrations, the session for the browser. Throttle
# rates are per user and per anonymous client; the defaults leave room for a test run.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "crm.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "crm.api.ordering.ListOrdering",
    ],
    # JSON only: the browser's view of the API is Swagger UI at /api/docs/.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "120/minute"),
        "user": env_str("API_THROTTLE_USER", "6000/minute"),
        "auth": env_str("API_THROTTLE_AUTH", "120/minute"),
    },
    # The throttles count anonymous clients by the same address as the lockout.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "crm.api.errors.api_exception_handler",
    "DATE_FORMAT": "iso-8601",
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Channel CRM API",
    "DESCRIPTION": (
        "Partners, agreements, coverage, feedback and weekly metrics. Authenticate with "
        "`Authorization: Token <token>`: POST a username and password to /api/v1/auth/token/ "
        "for a new token (shown once). A token ends when revoked (DELETE /api/v1/auth/token/, "
        "or /api/v1/auth/tokens/{id}/), when its user's password changes, and after "
        "API_TOKEN_IDLE_DAYS days unused."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ChannelKindEnum": "crm.models.ChannelKind",
        "PartnerKindEnum": "partners.models.PartnerKind",
        "AgreementStatusEnum": "partners.models.AgreementStatus",
        "FeedbackStatusEnum": "partners.models.FeedbackStatus",
        "RunStatusEnum": "analytics.models.RunStatus",
        "DealRegistrationStatusEnum": "partners.registration_models.RegistrationStatus",
        "ConflictCodeEnum": "partners.registration_models.ConflictCode",
        "FeedbackCategoryEnum": "partners.models.FeedbackCategory",
    },
}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy: every script and style comes from this app; no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "crm.request_id.RequestIdFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["asctime", "levelname", "name", "message", "request_id"],
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("text", "json") else "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# Covering indexes (INCLUDE) serve the metric queries on PostgreSQL; SQLite builds the same
# indexes without the included columns, which is fine for the embedded default.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Revenue (docs/metrics.md rule 10): every amount is converted into this ISO 4217 currency at
# the rates of the rates table (fx_rates.csv or the admin); none is fetched from the internet.
REPORTING_CURRENCY = env_str("REPORTING_CURRENCY", "USD")
if not is_currency_code(REPORTING_CURRENCY):
    raise ImproperlyConfigured(
        f"REPORTING_CURRENCY must be an ISO 4217 currency code such as USD, not "
        f"{REPORTING_CURRENCY!r}"
    )

# Deal registrations (README, "Deal registration"): the protection an approval gives when the
# partner's tier has no policy of its own, the extension granted once on request, the decision
# deadline managers work to (business days, Monday to Friday), the warning before protection
# ends, and how many registrations one partner user may submit in an hour.
REGISTRATION_PROTECTION_DAYS = env_int("REGISTRATION_PROTECTION_DAYS", 90)
REGISTRATION_EXTENSION_DAYS = env_int("REGISTRATION_EXTENSION_DAYS", 30)
REGISTRATION_DECISION_BUSINESS_DAYS = env_int("REGISTRATION_DECISION_BUSINESS_DAYS", 2)
REGISTRATION_EXPIRY_WARNING_DAYS = env_int("REGISTRATION_EXPIRY_WARNING_DAYS", 14)
REGISTRATION_SUBMISSIONS_PER_HOUR = env_int("REGISTRATION_SUBMISSIONS_PER_HOUR", 60)

# Webhooks: endpoints must be HTTPS (WEBHOOK_ALLOW_HTTP admits plain HTTP, for a local test
# receiver only); WEBHOOK_CA_FILE names extra certificate authorities to trust (a private CA),
# on top of the system's. Deliveries go to public addresses only; WEBHOOK_ALLOW_PRIVATE_ADDRESSES
# admits loopback and private ones, for receivers on the deployment's own network
# (partners/webhook_addresses.py).
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False)
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
WEBHOOK_CA_FILE = env_str("WEBHOOK_CA_FILE", "")
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_FIRST_RETRY_SECONDS = env_int("WEBHOOK_FIRST_RETRY_SECONDS", 30)
