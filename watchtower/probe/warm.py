"""Imported only by the sweep workers' forkserver: loads and warms what every worker needs
(the checks, the Public Suffix List) once, so each worker forked from it starts warm."""

from watchtower.parsers.domains import organizational_domain
from watchtower.probe import registry, workers  # noqa: F401 - the worker's code, imported

registry.checks()
organizational_domain("example.org")
