-- The W3C traceparent of the request that recorded the event (NULL when tracing is off):
-- the relay's delivery span links to it (shared/tracing.py).
ALTER TABLE audit_outbox ADD COLUMN traceparent text;
