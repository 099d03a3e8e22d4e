"""Input checks of migration fields: texts, connection configs, update masks, etags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.migration.connection_config import connection_config_violations
from services.migration.domain.statuses import MigrationStatus
from shared.errors import EtagMismatch, FailedPrecondition, FieldViolation, InvalidArgument

MAX_REASON_LENGTH = 2000
MAX_DISPLAY_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
UPDATABLE_FIELDS = frozenset({"display_name", "description", "source_config", "target_config"})
CONFIG_FIELDS = frozenset({"source_config", "target_config"})


def text_violations(
    name: str, value: str, min_length: int, max_length: int
) -> list[FieldViolation]:
    """``is required`` when blank (with a minimum), ``must be at most`` when too long."""
    if min_length > 0 and not value.strip():
        return [FieldViolation(name, "is required")]
    if len(value) > max_length:
        return [FieldViolation(name, f"must be at most {max_length} characters")]
    return []


def migration_field_violations(
    values: Mapping[str, Any], *, prefix: str = "migration."
) -> list[FieldViolation]:
    """Every violation among the given migration fields (those present in ``values``).

    Keys are proto field names: display_name, description, source_config, target_config.
    """
    violations: list[FieldViolation] = []
    if "display_name" in values:
        violations += text_violations(
            prefix + "display_name", values["display_name"], 1, MAX_DISPLAY_NAME_LENGTH
        )
    if "description" in values:
        violations += text_violations(
            prefix + "description", values["description"], 0, MAX_DESCRIPTION_LENGTH
        )
    for name in ("source_config", "target_config"):
        if name in values:
            violations += connection_config_violations(values[name], prefix + name)
    return violations


def check_update_mask(paths: Sequence[str], status: MigrationStatus) -> None:
    """Check an UpdateMigration mask: InvalidArgument for empty/unknown paths, then
    FailedPrecondition (CONFIG_IMMUTABLE) for connection configs of a started migration."""
    violations: list[FieldViolation] = []
    if not paths:
        violations.append(FieldViolation("update_mask", "must name at least one field"))
    for path in paths:
        if path not in UPDATABLE_FIELDS:
            violations.append(
                FieldViolation(
                    "update_mask",
                    f"{path!r} cannot be updated; updatable: {', '.join(sorted(UPDATABLE_FIELDS))}",
                )
            )
    if violations:
        raise InvalidArgument(violations)
    changed_configs = sorted(CONFIG_FIELDS.intersection(paths))
    if changed_configs and status is not MigrationStatus.PENDING:
        raise FailedPrecondition(
            f"connection configs can only change while the migration is PENDING, not {status}",
            reason="CONFIG_IMMUTABLE",
            metadata={"current_status": status.value, "fields": ",".join(changed_configs)},
        )


def check_etag(sent: str, current: str, resource_type: str, name: str) -> None:
    """Raise EtagMismatch (ABORTED) when an etag was sent and it is not the current one."""
    if sent and sent != current:
        raise EtagMismatch(resource_type, name)
