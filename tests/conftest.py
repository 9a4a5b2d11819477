"""Fixtures shared by the whole suite: the storage backends (tests/support/backends.py)."""

from tests.support.backends import backend, postgres_backend, postgres_server

__all__ = ["backend", "postgres_backend", "postgres_server"]
