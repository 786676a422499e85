"""Unit tests of the lab's stand-in WSGI apps (watchtower.lab.apps)."""
