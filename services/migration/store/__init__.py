"""All SQL of the migration service: asyncpg, one function per query, domain objects out.

Tables are unqualified (the pool puts the service's schema first on the search path).
Functions that write expect to run inside the caller's transaction.

Callers use this package as one store (`store.migration`, `store.insert_schema`); the queries
live by the resource they are about: `migrations` (migrations, their change log and NOTIFY,
in-flight counts, the quota lock, the transaction clock), `schemas` and `agent_executions`
(executions and their token usage).
"""

from services.migration.store.agent_executions import (
    add_token_usage,
    agent_execution,
    complete_agent_execution,
    insert_agent_execution,
    list_agent_executions,
    token_usage,
    tokens_in_month,
)
from services.migration.store.migrations import (
    change_channel,
    changes_after,
    count_in_flight,
    delete_migration,
    delete_organization_data,
    insert_migration,
    list_migrations,
    lock_org_quota,
    migration,
    migration_exists,
    migration_status,
    prune_changes,
    save_migration,
    transaction_time,
)
from services.migration.store.schemas import (
    insert_schema,
    list_schemas,
    schema,
)

__all__ = [
    "add_token_usage",
    "agent_execution",
    "change_channel",
    "changes_after",
    "complete_agent_execution",
    "count_in_flight",
    "delete_migration",
    "delete_organization_data",
    "insert_agent_execution",
    "insert_migration",
    "insert_schema",
    "list_agent_executions",
    "list_migrations",
    "list_schemas",
    "lock_org_quota",
    "migration",
    "migration_exists",
    "migration_status",
    "prune_changes",
    "save_migration",
    "schema",
    "token_usage",
    "tokens_in_month",
    "transaction_time",
]
