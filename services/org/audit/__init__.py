"""The org service's tamper-evident audit trail, behind sensei.org.v1.AuditService.

Rooms as in the service: `servicer` (the RPCs, and the org service's own in-process
delivery), `messages` (proto mapping), `use_cases` (`AuditTrail`: append, list, verify,
checkpoints), `chain` (the pure hash chain and checkpoints), `canonical` (the RFC 8785
bytes of an entry), `verification` (the pure chain walk) and `store` (its SQL). Design:
docs/architecture.md.
"""
