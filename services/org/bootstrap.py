"""The first organization, its owner, a service account and the platform operator, with
fresh API keys.

Idempotent by slug: run again, it reuses the organization, its owner (by e-mail), the
bootstrap service account and the operator (by display name), and issues new API keys
(secrets are never stored, so old ones cannot be shown again). Tables are unqualified:
`conn` has the org schema on its search path.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.org import domain, store
from services.org.domain import OrganizationDraft, Role, UserDraft
from services.org.use_cases.tokens import create_service_account
from shared.db import Connection
from shared.errors import AlreadyExists

BOOTSTRAP_SERVICE_ACCOUNT = "sensei-services"
# The platform operator identity (role OPERATOR, no organization).
BOOTSTRAP_OPERATOR = "sensei-operator"


@dataclass(frozen=True)
class BootstrapResult:
    """What a bootstrap produced: ids and the three API key secrets (shown once)."""

    org_id: str
    owner_user_id: str
    owner_api_key: str
    service_account_id: str
    service_api_key: str
    operator_id: str
    operator_api_key: str

    def env_lines(self) -> list[str]:
        """`KEY=value` lines for `.sensei/dev.env`."""
        return [
            f"SENSEI_ORG_ID={self.org_id}",
            f"SENSEI_OWNER_USER_ID={self.owner_user_id}",
            f"SENSEI_API_KEY={self.owner_api_key}",
            f"SENSEI_SERVICE_ACCOUNT_ID={self.service_account_id}",
            f"SENSEI_SERVICE_API_KEY={self.service_api_key}",
            f"SENSEI_OPERATOR_ID={self.operator_id}",
            f"SENSEI_OPERATOR_API_KEY={self.operator_api_key}",
        ]


async def bootstrap(
    conn: Connection,
    *,
    org_slug: str,
    org_name: str,
    owner_email: str,
    owner_name: str,
    plan: str = "FREE",
) -> BootstrapResult:
    """Creates (or reuses) the organization, its owner, the service account and the
    operator; new keys for all three."""
    owner_violations = [
        domain.check_email(owner_email.strip(), "owner_email"),
        domain.check_display_name(owner_name, "owner_name"),
    ]
    draft = domain.validate_new_organization(
        OrganizationDraft(display_name=org_name, slug=org_slug, plan=plan, settings={}),
        [v for v in owner_violations if v is not None],
    )
    email = domain.normalize_email(owner_email)
    async with conn.transaction():
        org = await store.insert_organization_if_absent(conn, draft)
        owner = await store.user_by_email(conn, email)
        if owner is None:
            owner = await store.insert_user(
                conn,
                org.id,
                UserDraft(email, owner_name.strip(), Role.OWNER.value, ""),
            )
        elif owner.org_id != org.id:
            raise AlreadyExists("User", "email", email)
        owner_secret = domain.new_api_key_secret()
        await store.insert_api_key(
            conn,
            secret=owner_secret,
            display_name="bootstrap",
            org_id=org.id,
            user_id=owner.id,
        )
        account = await store.service_account_by_display_name(conn, BOOTSTRAP_SERVICE_ACCOUNT)
        if account is None:
            created = await create_service_account(conn, BOOTSTRAP_SERVICE_ACCOUNT)
            account, service_secret = created.account, created.secret
        else:
            secret = domain.new_api_key_secret()
            await store.insert_api_key(
                conn,
                secret=secret,
                display_name=BOOTSTRAP_SERVICE_ACCOUNT,
                service_account_id=account.id,
            )
            service_secret = secret.secret
        operator_id = await store.insert_operator_if_absent(conn, BOOTSTRAP_OPERATOR)
        operator_secret = domain.new_api_key_secret()
        await store.insert_api_key(
            conn,
            secret=operator_secret,
            display_name=BOOTSTRAP_OPERATOR,
            operator_id=operator_id,
        )
    return BootstrapResult(
        org_id=org.id,
        owner_user_id=owner.id,
        owner_api_key=owner_secret.secret,
        service_account_id=account.id,
        service_api_key=service_secret,
        operator_id=operator_id,
        operator_api_key=operator_secret.secret,
    )
