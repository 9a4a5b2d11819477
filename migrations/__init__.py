"""Numbered SQL migrations, applied in order at start-up (append-only once landed)."""
