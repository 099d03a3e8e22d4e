"""Sensei services: org, migration, verification, pattern (each deployable on its own)."""
