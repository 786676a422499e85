"""Real servers for watchtower's integration tests (see tests/servers/plugin.py)."""
