"""The fleet file: TOML in, typed and validated models out (see watchtower/config/fleet.py)."""

from watchtower.config.fleet import *  # noqa: F403 - the public models and loaders
