"""The use cases of the migration service, one module per resource.

`migrations` (MigrationService: CRUD, lifecycle, progress, usage, connections, watching),
`schemas` (SchemaService: store, capture, read, compare) and `agent_executions`
(AgentExecutionService: agent runs and their tokens). Each write is one transaction; the
rules come from domain, the SQL from store.
"""

from services.migration.use_cases.agent_executions import AgentExecutions
from services.migration.use_cases.migrations import Migrations
from services.migration.use_cases.schemas import Schemas

__all__ = ["AgentExecutions", "Migrations", "Schemas"]
