"""Imported only by the sweep workers' forkserver: loads and warms what every worker needs
(the checks, the Public Suffix List) once, so each worker forked from it starts warm."""

from watchtower import plugins, sweep_procs  # noqa: F401 - the worker's code, imported
from watchtower.parsers.dmarc import organizational_domain

plugins.checks()
organizational_domain("example.org")
