"""Typed access to carebell's environment variables.

Settings are read once at start-up. A value that cannot be understood stops the
process with one line saying which variable and why, rather than a traceback or,
worse, a silent fallback to something unsafe.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path

PREFIX = "CAREBELL_"


class ConfigError(Exception):
    """A setting is missing or malformed. The message names the variable."""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(PREFIX + name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name)
    if not raw:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a whole number, not {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{PREFIX}{name} must be at least {minimum}, not {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = env_str(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name} must be a number, not {raw!r}") from None


def env_decimal(name: str, default: str, *, minimum: str | None = None) -> Decimal:
    """A decimal amount (prices: no binary rounding), e.g. "0.0079"."""
    raw = env_str(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{PREFIX}{name} must be a number, not {raw!r}") from None
    if not value.is_finite() or (minimum is not None and value < Decimal(minimum)):
        raise ConfigError(f"{PREFIX}{name} must be a number of at least {minimum}, not {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name)
    if not raw:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env_str(name, default).lower()
    if raw not in choices:
        raise ConfigError(f"{PREFIX}{name} must be one of {', '.join(choices)}, not {raw!r}")
    return raw


def data_dir_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where CAREBELL_DATA_DIR points (default ./var), without creating it."""
    raw = (os.environ if environ is None else environ).get(PREFIX + "DATA_DIR", "").strip()
    return Path(raw or "var").resolve()


def data_dir() -> Path:
    """The data directory, created if missing; one that cannot be created or written
    to (a file, a read-only mount) is a configuration error, not a traceback later."""
    path = data_dir_path()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{PREFIX}DATA_DIR {str(path)!r} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"{PREFIX}DATA_DIR {str(path)!r} cannot be created: {reason}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{PREFIX}DATA_DIR {str(path)!r} is not writable")
    return path


#: The signing key generated for development (see `secret_key`). Only a development
#: run writes it, so a data directory holding one was made for development.
GENERATED_KEY_FILE = "secret_key"


def is_development_data_dir(path: Path) -> bool:
    """True when `path` holds the secret a development run (the demo) generated."""
    return (path / GENERATED_KEY_FILE).is_file()


def database_config(default_sqlite: Path) -> dict:
    """Django's DATABASES['default'] from CAREBELL_DATABASE_URL (SQLite by default)."""
    import dj_database_url

    url = env_str("DATABASE_URL") or f"sqlite:///{default_sqlite}"
    if "://" not in url:
        raise ConfigError(f"{PREFIX}DATABASE_URL is not a URL (expected e.g. postgres://…)")
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises bare ValueErrors and KeyErrors
        raise ConfigError(f"{PREFIX}DATABASE_URL cannot be used: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        config["CONN_MAX_AGE"] = 0
        # WAL lets the web process read while the worker writes; the busy timeout
        # makes a writer wait for the lock instead of failing at once.
        config["OPTIONS"] = {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif engine == "django.db.backends.postgresql":
        config["ENGINE"] = "carebell.postgresql"  # Django's, with a cheaper health check
    else:
        raise ConfigError(f"{PREFIX}DATABASE_URL must be sqlite:// or postgres://, not {engine}")
    return config


def secret_key(debug: bool, directory: Path) -> str:
    """The signing key. Required in production; generated once into the data dir for
    development and the demo, so links stay valid across restarts."""
    key = env_str("SECRET_KEY")
    if key:
        if not debug and len(key) < 50:
            raise ConfigError(f"{PREFIX}SECRET_KEY must be at least 50 characters")
        return key
    if not debug:
        raise ConfigError(f"{PREFIX}SECRET_KEY is required when {PREFIX}DEBUG is off")
    return generated_secret(directory / "secret_key", 64)


def sim_token(enabled: bool, debug: bool, directory: Path) -> str:
    """The secret the simulated phone signs its callbacks and patient replies with.

    Never a fixed, published value: empty while the simulator is off; generated once
    into the data dir in development and the demo (the simulator started by
    `python -m carebell.simulator.server` reads the same file); required, and
    long, when the simulator is switched on with debug off."""
    token = env_str("SIM_AUTH_TOKEN")
    if not enabled:
        return ""
    if token:
        if not debug and len(token) < 20:
            raise ConfigError(f"{PREFIX}SIM_AUTH_TOKEN must be at least 20 characters")
        return token
    if not debug:
        raise ConfigError(
            f"{PREFIX}SIM_AUTH_TOKEN is required when {PREFIX}SIM_ENABLED is on "
            f"and {PREFIX}DEBUG is off"
        )
    return generated_secret(directory / "sim_token", 32)


def generated_secret(path: Path, nbytes: int) -> str:
    """A random secret kept in `path`: created once, readable by its owner only from
    the first byte, and whole when it appears (of two processes starting together,
    one writes it and both read the same)."""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(nbytes))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def env_minutes(name: str, default: int, *, minimum: int = 1) -> dt.timedelta:
    """A duration given in whole minutes."""
    return dt.timedelta(minutes=env_int(name, default, minimum=minimum))


def fail(error: ConfigError) -> None:
    """Stop start-up with one line on stderr and exit status 2."""
    sys.stderr.write(f"carebell: configuration error: {error}\n")
    raise SystemExit(2)
