"""Use cases of the pattern service, one module per resource, one transaction per change.

`patterns` (upsert, get, list, delete, outcomes, reindex, the index's state) and `search`
(SearchPatterns). Callers: the servicer and the wiring in server.py.
"""

from services.pattern.use_cases.patterns import IndexDescription, Patterns
from services.pattern.use_cases.search import PatternSearch

__all__ = ["IndexDescription", "PatternSearch", "Patterns"]
