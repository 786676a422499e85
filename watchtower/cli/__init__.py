"""The `watchtower` command: argument parsing only; each command calls into the engine."""

from watchtower.cli.main import main

__all__ = ["main"]
