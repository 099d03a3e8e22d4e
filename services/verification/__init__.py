"""Sensei verification service: schema parity, row counts, checksums and signed certificates."""
