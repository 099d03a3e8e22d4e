"""The org service's use cases, one module per resource; each change is one transaction.

`organizations`, `users` and `api_keys` (the tenancy RPCs), `tokens` (the token authority:
API-key exchange, published keys, rotation, service accounts, and the service's own key
source), `revocations` (token freshness at the source and the revocation feed);
`preconditions` holds what they all check first (resource names, the organization, the
caller's current role). Servicers call these; these call the domain and the store.
"""

from services.org.use_cases.api_keys import ApiKeys, CreatedApiKey
from services.org.use_cases.organizations import Organizations
from services.org.use_cases.revocations import DatabaseFreshness, RevocationBatch, RevocationFeed
from services.org.use_cases.tokens import CreatedServiceAccount, LocalKeySource, TokenAuthority
from services.org.use_cases.users import Users

__all__ = [
    "ApiKeys",
    "CreatedApiKey",
    "CreatedServiceAccount",
    "DatabaseFreshness",
    "LocalKeySource",
    "Organizations",
    "RevocationBatch",
    "RevocationFeed",
    "TokenAuthority",
    "Users",
]
