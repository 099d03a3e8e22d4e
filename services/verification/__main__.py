"""`python -m services.verification`: run the verification service."""

from services.verification.server import DEFINITION
from shared.server import main

if __name__ == "__main__":
    main(DEFINITION)
