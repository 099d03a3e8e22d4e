"""All SQL of the org service (asyncpg). One function per query; domain objects out.

Table names are unqualified: connections have the service schema on their search_path.
Unique-constraint violations become ALREADY_EXISTS here, where the constraint is known.

Callers use this package as one store (`store.organization`, `store.append_revocation`);
the queries live by what they are about: `organizations`, `users`, `principals` (service
accounts and operators), `api_keys` (with the exchange and freshness reads),
`signing_keys` (token signing keys) and `revocations` (the token revocation log); `rows`
holds what they share.
"""

from services.org.store.api_keys import (
    api_key,
    api_key_owner,
    api_keys_page,
    insert_api_key,
    revoke_api_key,
    token_standing,
    touch_api_key,
)
from services.org.store.organizations import (
    delete_organization,
    insert_organization,
    insert_organization_if_absent,
    organization,
    organization_by_slug,
    organizations_page,
    update_organization,
)
from services.org.store.principals import (
    insert_operator_if_absent,
    insert_service_account,
    operator_by_display_name,
    service_account_by_display_name,
)
from services.org.store.revocations import (
    REVOCATIONS_CHANNEL,
    append_revocation,
    last_revocation,
    revocations_after,
)
from services.org.store.rows import RowLock
from services.org.store.signing_keys import (
    active_signing_key,
    insert_active_signing_key,
    lock_signing_keys,
    retire_active_signing_key,
    signing_key,
    signing_keys,
)
from services.org.store.users import (
    delete_user,
    insert_user,
    lock_owners,
    update_user,
    user,
    user_by_email,
    users_page,
)

__all__ = [
    "REVOCATIONS_CHANNEL",
    "RowLock",
    "active_signing_key",
    "api_key",
    "api_key_owner",
    "api_keys_page",
    "append_revocation",
    "delete_organization",
    "delete_user",
    "insert_active_signing_key",
    "insert_api_key",
    "insert_operator_if_absent",
    "insert_organization",
    "insert_organization_if_absent",
    "insert_service_account",
    "insert_user",
    "last_revocation",
    "lock_owners",
    "lock_signing_keys",
    "operator_by_display_name",
    "organization",
    "organization_by_slug",
    "organizations_page",
    "retire_active_signing_key",
    "revocations_after",
    "revoke_api_key",
    "service_account_by_display_name",
    "signing_key",
    "signing_keys",
    "token_standing",
    "touch_api_key",
    "update_organization",
    "update_user",
    "user",
    "user_by_email",
    "users_page",
]
