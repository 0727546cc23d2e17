"""Configuration. The only module that reads os.environ: everything else takes a Settings."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.vocabulary import is_e164

DEFAULT_NATIONAL_LINES = ("dv_hotline", "lifeline_988")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and why."""


def _float(environ: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value >= minimum:  # also refuses nan
        raise SettingsError(f"{name} must be at least {minimum}, got {raw}")
    return value


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = "sqlite:///haven.db"
    secret_key: str = ""
    # HAVEN_PREVIOUS_SECRET_KEYS: keys data may still be under, for `python -m bot rekey`.
    previous_secret_keys: tuple[str, ...] = ()
    public_url: str = "http://127.0.0.1:8080"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    # Twilio REST base URL; tests point it at a local fake Twilio server.
    twilio_api_base: str = ""
    # Seconds one Twilio request may take; past it the outcome is unknown (never resent).
    twilio_timeout: float = 10.0
    # Texts in flight at once, across conversations (one conversation's go in order).
    outbox_concurrency: int = 8
    org_name: str = "Haven"
    # Whether texts may name domestic violence or trafficking (rule 3: off by default).
    name_services: bool = False
    terms_url: str = ""
    # HAVEN_HOURS: "24/7" or e.g. "mon-fri 09:00-17:00; sat 10:00-14:00 America/Chicago".
    hours: str = "24/7"
    retention_days: int = 90
    # Audit rows (who viewed what) are kept this long, then deleted.
    audit_retention_days: int = 365
    # HAVEN_METRICS_TOKEN: when set, /metrics answers only to "Authorization: Bearer <it>".
    metrics_token: str = ""
    log_format: str = "auto"  # console | json | auto (console on a terminal)
    log_level: str = "info"
    # Timers (seconds). DESIGN.md section 4.
    nudge_after: int = 600
    expire_after: int = 3600
    aging_every: int = 1800
    alarm_after: int = 60
    national_lines: tuple[str, ...] = DEFAULT_NATIONAL_LINES
    exit_keywords: tuple[str, ...] = ("EXIT", "SALIR")
    cross_team: bool = True
    # HAVEN_ONCALL_NUMBERS: who is paged by SMS when a priority-1 texter waits unclaimed and
    # no staff member is signed in (E.164, comma-separated). The page names no texter.
    oncall_numbers: tuple[str, ...] = ()
    # HAVEN_TRUSTED_PROXIES: addresses or CIDRs of the proxies in front of Haven, whose
    # X-Forwarded-For is believed (login throttling per browser). Default none: served
    # directly, the header is ignored.
    trusted_proxies: tuple[str, ...] = ()
    # HAVEN_REPLY_LIMIT replies per HAVEN_REPLY_WINDOW seconds to one number; past it,
    # messages are stored and triaged but get no reply, unless they show danger.
    reply_limit: int = 20
    reply_window: int = 600
    # Where `serve` keeps a generated secret key when none is set (development only).
    secret_file: Path = field(default=Path(".haven-secret"))
    # How often background work (outbox, timers, retention) wakes, in seconds.
    tick_seconds: float = 1.0

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def trusted_networks(self) -> tuple[IPNetwork, ...]:
        return tuple(ipaddress.ip_network(p, strict=False) for p in self.trusted_proxies)

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file path when the database is SQLite, else None."""
        url = self.database_url
        if url.startswith("sqlite:///"):
            return url[len("sqlite:///") :] or "haven.db"
        if url.startswith("sqlite://"):
            return url[len("sqlite://") :] or ":memory:"
        return None

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env_map = os.environ if environ is None else environ
        get = env_map.get
        env = get("HAVEN_ENV", "development").strip().lower() or "development"
        if env not in ("development", "production"):
            raise SettingsError(f"HAVEN_ENV must be development or production, got {env!r}")
        port = _int(env_map, "PORT", 8080, minimum=1)
        host = get("HOST", "127.0.0.1").strip() or "127.0.0.1"
        database_url = get("DATABASE_URL", "").strip() or "sqlite:///haven.db"
        if database_url.startswith("postgres://"):
            # Heroku-style URLs; asyncpg accepts both spellings but we normalise.
            database_url = "postgresql://" + database_url[len("postgres://") :]
        if not database_url.startswith(("sqlite:", "postgresql://")):
            raise SettingsError("DATABASE_URL must start with sqlite:/// or postgresql://")
        secret_key = get("HAVEN_SECRET_KEY", "")
        if secret_key and len(secret_key) < 32:
            raise SettingsError("HAVEN_SECRET_KEY must be at least 32 characters")
        if env == "production" and not secret_key:
            raise SettingsError("HAVEN_SECRET_KEY is required when HAVEN_ENV=production")
        previous = tuple(
            k.strip() for k in get("HAVEN_PREVIOUS_SECRET_KEYS", "").split(",") if k.strip()
        )
        if any(len(k) < 32 for k in previous):
            raise SettingsError("each of HAVEN_PREVIOUS_SECRET_KEYS must be at least 32 characters")
        token = get("TWILIO_AUTH_TOKEN", "").strip()
        if env == "production" and not token:
            raise SettingsError("TWILIO_AUTH_TOKEN is required when HAVEN_ENV=production")
        account_sid = get("TWILIO_ACCOUNT_SID", "").strip()
        from_number = get("TWILIO_FROM_NUMBER", "").strip()
        service_sid = get("TWILIO_MESSAGING_SERVICE_SID", "").strip()
        _check_sender(env, account_sid, token, from_number, service_sid)
        public_url = (get("HAVEN_PUBLIC_URL", "").strip() or f"http://{host}:{port}").rstrip("/")
        log_format = get("HAVEN_LOG_FORMAT", "auto").strip().lower() or "auto"
        if log_format not in ("console", "json", "auto"):
            raise SettingsError("HAVEN_LOG_FORMAT must be console or json")
        lines = (
            tuple(x.strip() for x in get("HAVEN_NATIONAL_LINES", "").split(",") if x.strip())
            or DEFAULT_NATIONAL_LINES
        )
        exit_words = tuple(
            x.strip().upper() for x in get("HAVEN_EXIT_KEYWORDS", "").split(",") if x.strip()
        ) or ("EXIT", "SALIR")
        oncall = tuple(x.strip() for x in get("HAVEN_ONCALL_NUMBERS", "").split(",") if x.strip())
        if bad := [n for n in oncall if not is_e164(n)]:
            raise SettingsError(
                f"HAVEN_ONCALL_NUMBERS: {len(bad)} number(s) are not E.164 like +15551234567"
            )
        proxies = tuple(x.strip() for x in get("HAVEN_TRUSTED_PROXIES", "").split(",") if x.strip())
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise SettingsError(
                    f"HAVEN_TRUSTED_PROXIES: {proxy!r} is not an IP address or CIDR"
                ) from None
        settings = cls(
            env=env,
            host=host,
            port=port,
            database_url=database_url,
            secret_key=secret_key,
            previous_secret_keys=previous,
            public_url=public_url,
            twilio_account_sid=account_sid,
            twilio_auth_token=token,
            twilio_from_number=from_number,
            twilio_messaging_service_sid=service_sid,
            twilio_api_base=get("TWILIO_API_BASE", "").strip().rstrip("/"),
            twilio_timeout=_float(env_map, "HAVEN_TWILIO_TIMEOUT", 10.0, minimum=0.1),
            outbox_concurrency=_int(env_map, "HAVEN_OUTBOX_CONCURRENCY", 8, minimum=1),
            org_name=get("HAVEN_ORG_NAME", "").strip() or "Haven",
            name_services=get("HAVEN_NAME_SERVICES", "").strip().lower() in ("1", "true", "yes"),
            terms_url=get("HAVEN_TERMS_URL", "").strip(),
            hours=get("HAVEN_HOURS", "").strip() or "24/7",
            retention_days=_int(env_map, "HAVEN_RETENTION_DAYS", 90, minimum=1),
            audit_retention_days=_int(env_map, "HAVEN_AUDIT_RETENTION_DAYS", 365, minimum=1),
            metrics_token=get("HAVEN_METRICS_TOKEN", "").strip(),
            log_format=log_format,
            log_level=get("HAVEN_LOG_LEVEL", "info").strip().lower() or "info",
            nudge_after=_int(env_map, "HAVEN_NUDGE_AFTER", 600, minimum=1),
            expire_after=_int(env_map, "HAVEN_EXPIRE_AFTER", 3600, minimum=1),
            aging_every=_int(env_map, "HAVEN_AGING_EVERY", 1800, minimum=1),
            alarm_after=_int(env_map, "HAVEN_ALARM_AFTER", 60, minimum=1),
            national_lines=lines,
            exit_keywords=exit_words,
            cross_team=get("HAVEN_CROSS_TEAM", "true").strip().lower() not in ("0", "false", "no"),
            oncall_numbers=oncall,
            trusted_proxies=proxies,
            reply_limit=_int(env_map, "HAVEN_REPLY_LIMIT", 20, minimum=1),
            reply_window=_int(env_map, "HAVEN_REPLY_WINDOW", 600, minimum=1),
        )
        from bot.hours import parse_hours  # validate early: a bad HAVEN_HOURS stops start-up

        try:
            parse_hours(settings.hours)
        except ValueError as exc:
            raise SettingsError(f"HAVEN_HOURS: {exc}") from None
        return settings


def _check_sender(env: str, sid: str, token: str, from_number: str, service_sid: str) -> None:
    """Refuse a Twilio set-up that would silently not text: production without a full
    account (replies would show "sent" on the console sender), or an account anywhere with
    no number to text from."""
    if from_number and not is_e164(from_number):
        raise SettingsError("TWILIO_FROM_NUMBER must be an E.164 number like +15551234567")
    has_from = bool(from_number or service_sid)
    if env == "production" and not (sid and token and has_from):
        missing = [
            name
            for name, value in (("TWILIO_ACCOUNT_SID", sid), ("TWILIO_AUTH_TOKEN", token))
            if not value
        ]
        if not has_from:
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        raise SettingsError(
            "HAVEN_ENV=production needs a real Twilio sender; missing: " + ", ".join(missing)
        )
    if sid and token and not has_from:
        raise SettingsError(
            "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are set but neither TWILIO_FROM_NUMBER"
            " nor TWILIO_MESSAGING_SERVICE_SID: Haven would have no number to text from"
        )


def ensure_secret_key(settings: Settings) -> tuple[Settings, bool]:
    """Return settings with a secret key, creating one on disk in development.

    The boolean says whether a new key file was written, so `serve` can say so in its log.
    """
    if settings.secret_key:
        return settings, False
    if settings.production:
        raise SettingsError("HAVEN_SECRET_KEY is required when HAVEN_ENV=production")
    path = settings.secret_file
    created = False
    if path.exists():
        key = path.read_text().strip()
    else:
        key = secrets.token_urlsafe(48)
        path.write_text(key + "\n")
        path.chmod(0o600)
        created = True
    if len(key) < 32:
        raise SettingsError(f"{path} holds a key shorter than 32 characters")
    return settings.with_(secret_key=key), created
