"""Django settings, all from the environment (see carebell.config and the README)."""

from __future__ import annotations

from carebell import config
from carebell.config import ConfigError, env_bool, env_choice, env_int, env_list, env_str

try:
    DEBUG = env_bool("DEBUG", default=False)
    DATA_DIR = config.data_dir()
    SECRET_KEY = config.secret_key(DEBUG, DATA_DIR)
    DATABASES = {"default": config.database_config(DATA_DIR / "carebell.sqlite3")}
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
    BASE_URL = env_str("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60, minimum=60)

    # Providers. Without configuration nothing real is ever contacted: the defaults
    # log (console) or go to the simulated phone and mailbox.
    SMS_PROVIDER = env_choice("SMS_PROVIDER", ("twilio", "sim", "console"), "console")
    VOICE_PROVIDER = env_choice("VOICE_PROVIDER", ("twilio", "sim", "console"), "console")
    EMAIL_PROVIDER = env_choice("EMAIL_PROVIDER", ("smtp", "anymail", "sim", "console"), "console")
    # The simulated phone and mailbox (and their webhooks) exist only in development
    # and the demo, unless switched on explicitly; `check --deploy` fails if they
    # can be reached with debug off. Their secret is never a published default.
    SIM_ENABLED = env_bool("SIM_ENABLED", default=DEBUG)
    SIM_URL = env_str("SIM_URL", "http://127.0.0.1:8025")
    SIM_AUTH_TOKEN = config.sim_token(SIM_ENABLED, DEBUG, DATA_DIR)
    SIM_MESSAGES_PER_SECOND = config.env_float("SIM_MESSAGES_PER_SECOND", 0.0)
    TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID")
    TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN")
    TWILIO_FROM = env_str("TWILIO_FROM")
    TWILIO_MESSAGING_SERVICE_SID = env_str("TWILIO_MESSAGING_SERVICE_SID")
    TWILIO_BASE_URL = env_str("TWILIO_BASE_URL", "https://api.twilio.com").rstrip("/")
    TWILIO_MESSAGES_PER_SECOND = config.env_float("TWILIO_MESSAGES_PER_SECOND", 1.0)
    EMAIL_HOST = env_str("SMTP_HOST", "127.0.0.1")
    EMAIL_PORT = env_int("SMTP_PORT", 25, minimum=1)
    EMAIL_HOST_USER = env_str("SMTP_USER")
    EMAIL_HOST_PASSWORD = env_str("SMTP_PASSWORD")
    EMAIL_USE_TLS = env_bool("SMTP_STARTTLS", default=False)
    EMAIL_USE_SSL = env_bool("SMTP_SSL", default=False)
    EMAIL_TIMEOUT = env_int("SMTP_TIMEOUT", 20, minimum=1)
    DEFAULT_FROM_EMAIL = env_str("EMAIL_FROM", "carebell@localhost")
    EMAIL_UNSUBSCRIBE_MAILTO = env_str("EMAIL_UNSUBSCRIBE_MAILTO")
    # /metrics: with debug off it answers only scrapers holding the token (404 when
    # none is configured); one aggregate serves every scrape for a few seconds.
    METRICS_TOKEN = env_str("METRICS_TOKEN")
    METRICS_NEED_TOKEN = not DEBUG
    METRICS_CACHE_SECONDS = env_int("METRICS_CACHE_SECONDS", 5, minimum=0)
    # Staff reports estimate SMS cost as segments sent × this price (the provider's
    # price per outbound segment, in the account's currency).
    SMS_PRICE_PER_SEGMENT = config.env_decimal("SMS_PRICE_PER_SEGMENT", "0.0083", minimum="0")
    # Sign-in throttling (django-axes): per account and per address.
    LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
    LOGIN_COOLOFF = config.env_minutes("LOGIN_COOLOFF_MINUTES", 15)
    # Only behind a reverse proxy that sets X-Forwarded-Proto and X-Forwarded-For
    # itself (overwriting what clients send) may carebell believe those headers.
    BEHIND_PROXY = env_bool("BEHIND_PROXY", default=False)
    ANYMAIL_ESP = env_str("ANYMAIL_ESP")
    ANYMAIL = {
        "WEBHOOK_SECRET": env_str("ANYMAIL_WEBHOOK_SECRET") or None,
        "POSTMARK_SERVER_TOKEN": env_str("POSTMARK_SERVER_TOKEN") or None,
        "SENDGRID_API_KEY": env_str("SENDGRID_API_KEY") or None,
        "MAILGUN_API_KEY": env_str("MAILGUN_API_KEY") or None,
        "MAILGUN_SENDER_DOMAIN": env_str("MAILGUN_SENDER_DOMAIN") or None,
        "AMAZON_SES_CLIENT_PARAMS": {},
    }
    # Outbound events (webhooks): endpoints on loopback, private or link-local
    # addresses are refused, at save and at send, unless this allows them (tests,
    # the demo, a receiver on the same private network).
    WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
    # HL7 v2 in: the largest message the MLLP listener and importer accept (a larger
    # one gets an AR), and how long received messages are kept (`carebell hl7 purge`).
    HL7_MAX_MESSAGE_BYTES = env_int("HL7_MAX_MESSAGE_BYTES", 1_048_576, minimum=1024)
    HL7_RETENTION_DAYS = env_int("HL7_RETENTION_DAYS", 90, minimum=1)
    LOG_LEVEL = env_choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
except ConfigError as error:
    config.fail(error)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "carebell.sites",
    "carebell.people",
    "carebell.appointments",
    "carebell.pharmacy",
    "carebell.messaging",
    "carebell.inbox",
    "carebell.audit",
    "carebell.formats",
    "carebell.providers",
    "carebell.interop.hl7",
    "carebell.interop.fhir",
    "carebell.interop.csv",
    "carebell.api",
    "carebell.outbound",
    "carebell.demo",
    # axes before carebell.web, whose audit of a failed sign-in reads axes's verdict.
    "axes",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "carebell.web",
    "carebell.web.staff",
    "carebell.web.patient",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "carebell.web.security.SecurityHeadersMiddleware",
    # Machines skip the rest (sessions, sign-in, CSRF, messages): signed provider
    # webhooks, and API and FHIR calls with a bearer token.
    "carebell.web.lane.MachineLaneMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "carebell.web.sessions.SessionMiddleware",  # background polls are not activity
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "carebell.web.staff.second_factor.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into carebell's sign-in page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: a locked-out account or address is refused before its password
# is even checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = LOGIN_COOLOFF
# Either is enough to lock: one account tried from many addresses, or one address
# trying many accounts.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "carebell.web.sign_in.client_address"
AXES_LOCKOUT_CALLABLE = "carebell.web.sign_in.locked_out"
AXES_VERBOSE = False  # no configuration banner at every start; failures are audited

# Scripts only from carebell itself (the admin's are files with data attributes).
# Inline <style> is allowed: the patient pages and one admin list carry one.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), "
    "bluetooth=(), display-capture=(), browsing-topics=()"
)

ROOT_URLCONF = "carebell.urls"
LOGIN_URL = "staff:sign-in"
LOGIN_REDIRECT_URL = "staff:home"
WSGI_APPLICATION = "carebell.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("es", "Español")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request without it
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"

# Sessions end after idle time (SPEC §10): the cookie is refreshed on every request
# and expires SESSION_IDLE_SECONDS after the last one.
SESSION_COOKIE_AGE = SESSION_IDLE_SECONDS
# Django's database sessions, read with one hand-written statement (idle polls).
SESSION_ENGINE = "carebell.web.sessions"
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if BEHIND_PROXY:
    # The proxy terminated TLS and says so; a client's own header never reaches us.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = [BASE_URL] if BASE_URL.startswith("https://") else []

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "carebell.logs.StructuredFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "carebell": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
