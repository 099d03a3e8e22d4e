"""Use cases of the verification service, one module per resource, one transaction per change.

`verifications` (create, get, list, watch, organization deleted) and `signing_keys` (the key
lifecycle, issuing and checking certificates). Callers: the servicer, the workers, wiring.
"""

from services.verification.use_cases.signing_keys import Revocation, Rotation, SigningKeys
from services.verification.use_cases.verifications import Verifications

__all__ = ["Revocation", "Rotation", "SigningKeys", "Verifications"]
