"""The org service's rules: its resources, input validation and who may do what.

Pure: no I/O. Validation collects every violation of a request before raising, so a
caller sees all of them in one BadRequest. Role rules go beyond the interceptor's minimum
level (docs/architecture.md#roles): nobody manages a user above their own role or grants a
role above their own (so only an OWNER creates, promotes or demotes OWNERs), plan changes
need an OWNER (or a service), and an organization always keeps at least one OWNER.

Callers use this package as one module (`domain.validate_new_user`, `domain.Role`); the
rules live by resource: `organizations`, `users`, `api_keys`, `service_accounts`, and the
field checks they share in `validation`.
"""

from services.org.domain.api_keys import (
    API_KEY_SCHEME,
    ApiKey,
    ApiKeyDraft,
    ApiKeyOwner,
    NewSecret,
    TokenStanding,
    looks_like_api_key,
    new_api_key_secret,
    secret_sha256,
    validate_new_api_key,
)
from services.org.domain.organizations import (
    ORGANIZATION_IMMUTABLE,
    ORGANIZATION_MUTABLE,
    Organization,
    OrganizationDraft,
    OrganizationPatch,
    Plan,
    check_plan,
    lookup_allowed,
    organization_changes,
    validate_new_organization,
)
from services.org.domain.service_accounts import (
    ServiceAccount,
    check_service_account,
)
from services.org.domain.users import (
    USER_IMMUTABLE,
    USER_MUTABLE,
    Role,
    User,
    UserDraft,
    UserPatch,
    actor_rank,
    check_can_grant,
    check_can_manage,
    check_keeps_an_owner,
    check_role,
    check_user_deletable,
    user_changes,
    user_name,
    validate_new_user,
)
from services.org.domain.validation import (
    MAX_DISPLAY_NAME,
    MAX_EMAIL,
    MAX_URL,
    Changes,
    check_display_name,
    check_email,
    check_etag,
    check_mask,
    check_slug,
    check_url,
    etag_of,
    normalize_email,
    raise_if,
)

__all__ = [
    "API_KEY_SCHEME",
    "MAX_DISPLAY_NAME",
    "MAX_EMAIL",
    "MAX_URL",
    "ORGANIZATION_IMMUTABLE",
    "ORGANIZATION_MUTABLE",
    "USER_IMMUTABLE",
    "USER_MUTABLE",
    "ApiKey",
    "ApiKeyDraft",
    "ApiKeyOwner",
    "Changes",
    "NewSecret",
    "Organization",
    "OrganizationDraft",
    "OrganizationPatch",
    "Plan",
    "Role",
    "ServiceAccount",
    "TokenStanding",
    "User",
    "UserDraft",
    "UserPatch",
    "actor_rank",
    "check_can_grant",
    "check_can_manage",
    "check_display_name",
    "check_email",
    "check_etag",
    "check_keeps_an_owner",
    "check_mask",
    "check_plan",
    "check_role",
    "check_service_account",
    "check_slug",
    "check_url",
    "check_user_deletable",
    "etag_of",
    "looks_like_api_key",
    "lookup_allowed",
    "new_api_key_secret",
    "normalize_email",
    "organization_changes",
    "raise_if",
    "secret_sha256",
    "user_changes",
    "user_name",
    "validate_new_api_key",
    "validate_new_organization",
    "validate_new_user",
]
