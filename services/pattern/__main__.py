"""`python -m services.pattern`: run the pattern service (and its indexer) until SIGTERM."""

from services.pattern.server import DEFINITION
from shared.server import main

if __name__ == "__main__":
    main(DEFINITION)
