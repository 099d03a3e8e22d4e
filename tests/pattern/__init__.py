"""Tests of the pattern service."""
