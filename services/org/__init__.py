"""The org service: organizations, users, API keys, access tokens and the audit log."""
