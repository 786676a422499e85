"""Jinja2 templates (package data): the compliance report's HTML e-mail and plain-text part."""
