"""`python -m services.verification`: run the verification service.

`python -m services.verification verify-certificate cert.json --keys jwks.json` checks a
certificate offline instead (no server, no database).
"""

import sys

from services.verification import offline
from services.verification.server import DEFINITION
from shared.server import main

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "verify-certificate":
        sys.exit(offline.main(sys.argv[1:]))
    main(DEFINITION)
