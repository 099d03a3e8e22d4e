-- Events the audit log refuses as invalid are set aside instead of blocking those behind them.
ALTER TABLE audit_outbox ADD COLUMN dead_at timestamptz;
CREATE INDEX audit_outbox_pending ON audit_outbox (position) WHERE dead_at IS NULL;
