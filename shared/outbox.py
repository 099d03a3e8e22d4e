"""Transactional audit outbox: record an event in the same transaction as the change.

The relay that delivers recorded events to `AuditService.AppendAuditEvents` lives in
`shared/relay.py`. Events carry a unique id, so redelivery after a crash is harmless:
the org service stores each event once.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from shared import names, tracing
from shared.db import Connection
from shared.principals import current_peer_ip, current_principal_or_none

# The audit chain of actions that belong to no organization (platform principals acting on
# platform-wide resources: patterns, signing keys). Only platform principals can read it.
PLATFORM_ORG_ID = names.PLATFORM_ORG_ID

# Woken relays deliver at once; the notification is sent when the transaction commits.
NOTIFY_CHANNEL = "sensei_audit_outbox"


async def record(
    conn: Connection,
    *,
    action: str,
    resource_type: str,
    resource_id: str,
    org_id: str | None,
    details: dict[str, Any] | None = None,
    actor: str | None = None,
) -> str:
    """Records an audit event of the current caller inside the caller's transaction.

    Returns the event id. `action` reads like `migration.start`; `details` must not
    contain secrets. `org_id` None files the event in the platform chain
    (`PLATFORM_ORG_ID`). `actor` names who acted when no caller does (a background worker,
    e.g. `services/verification`).
    """
    principal = current_principal_or_none()
    event_id = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO audit_outbox (event_id, org_id, user_id, actor, action, resource_type,"
        " resource_id, ip_address, details, traceparent)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10)",
        event_id,
        org_id or PLATFORM_ORG_ID,
        principal.user_id if principal else None,
        actor or (principal.subject if principal else "anonymous"),
        action,
        resource_type,
        resource_id,
        current_peer_ip(),
        json.dumps(details or {}),
        tracing.current_traceparent(),
    )
    await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return event_id
