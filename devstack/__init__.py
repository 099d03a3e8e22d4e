"""Local development stack: an embedded PostgreSQL and the four services in one command."""
