"""Built-in checks, one module per family (installed as `watchtower.checks`).

Where a new check goes: the module of its family (`dns.py`, `web.py`, ...), as a `Check` subclass
decorated with `@register`, its id taken from docs/check-catalog.md. A new family is a new module
listed in `watchtower.probe.registry.BUILTIN_CHECK_MODULES`. Fixtures for its verdicts go in
`tests/fixtures/checks/<check id>.json`.
"""
