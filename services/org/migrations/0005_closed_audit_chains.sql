-- A deleted organization's chain ends with its deletion: once `organization.delete` is
-- appended, the chain is closed and later events for it are refused (the relays of the
-- other services set them aside as dead letters), so the deletion stays the last entry.
ALTER TABLE audit_chain_heads ADD COLUMN closed_at timestamptz;
