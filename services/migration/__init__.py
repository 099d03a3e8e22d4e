"""The migration service: migrations, their schemas and agent executions."""
