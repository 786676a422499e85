"""Fixtures for the Nix tests (see nixeval.py)."""

from tests.integration.nix.nixeval import nixeval

__all__ = ["nixeval"]
