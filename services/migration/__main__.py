"""`python -m services.migration`: run the migration service until SIGTERM/SIGINT."""

from services.migration.server import DEFINITION
from shared.server import main

if __name__ == "__main__":
    main(DEFINITION)
