"""What every table of the fleet file is built from: strict models, secrets, value checks.

Secrets are never inline: a secret field takes `{ "$env" = "NAME" }` or
`{ "$file" = "/run/secrets/x" }` and is read only when used, and its value never appears in a
repr, a log line or an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchtower.errors import ConfigError


class Strict(BaseModel):
    """Unknown keys are errors: a typo must never silently turn a check off."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(Strict):
    """A reference to a secret; `reveal()` reads it at the moment of use."""

    env: str | None = Field(default=None, alias="$env")
    file: str | None = Field(default=None, alias="$file")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError('secrets are never inline: use { "$env" = "NAME" } or '
                             '{ "$file" = "/run/secrets/name" }')
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError('give exactly one of "$env" or "$file"')
        return self

    def reveal(self) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError([f"environment variable {self.env} is not set"])
            return value
        assert self.file is not None
        try:
            return Path(self.file).read_text().strip()
        except OSError as exc:
            raise ConfigError([f"secret file {self.file}: {exc.strerror}"]) from None
        except ValueError as exc:  # a NUL byte in the path
            raise ConfigError([f"secret file {self.file!r}: {exc}"]) from None

    def problem(self) -> str | None:
        """Why this secret cannot be read now, or None (used by `validate`)."""
        try:
            self.reveal()
        except ConfigError as exc:
            return exc.problems[0]
        return None

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r})" if self.env else f"Secret(file={self.file!r})"

    __str__ = __repr__


def check_url(value: str, schemes: tuple[str, ...] = ("https", "http")) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"not a {'/'.join(schemes)} URL: {value!r}")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in URL {value!r}") from exc
    return value


HostPort = Annotated[str, Field(min_length=1)]


def check_hostport(value: str, lowest_port: int = 1) -> str:
    host, sep, port = value.rpartition(":")
    if value.startswith("[") or not sep:
        return value
    if not host or not port.isdigit() or not lowest_port <= int(port) < 65536:
        raise ValueError(f"expected host:port, got {value!r}")
    return value


class Tagged(Strict):
    tags: list[str] = Field(
        default_factory=list, description="labels the dashboard filters by and maintenance "
        'windows select by, e.g. ["production", "eu"]')
    customer: str | None = Field(
        default=None, description="the customer this belongs to: `report --customer` and "
        '`[[reports]] customer` select by it (also tag `customer:NAME`), e.g. "acme"')

    def all_tags(self) -> tuple[str, ...]:
        extra = (f"customer:{self.customer}",) if self.customer else ()
        return tuple(self.tags) + extra


def _label_ok(label: str) -> bool:
    return 0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)


def check_domain(value: str) -> str:
    name = value.rstrip(".").lower()
    labels = name.split(".")
    # letters (IDN too), digits, '-' and '_' only: the name ends up in URLs and DNS questions
    if (not name or len(name) > 253
            or not all(_label_ok(label) for label in labels)):
        raise ValueError(f"not a domain name: {value!r}")
    return name


def check_cron(value: str) -> str:
    """A five-field crontab expression (UTC), or ValueError saying why not."""
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"invalid cron expression ({exc})") from exc
    return value


def cron_problem(expr: str) -> str | None:
    """Why `expr` is not a usable crontab expression, or None."""
    try:
        check_cron(expr)
    except ValueError as exc:
        return str(exc)
    return None
