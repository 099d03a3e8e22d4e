-- The W3C traceparent of the request that queued the job (NULL when tracing is off): the
-- worker's span of the job links to it (shared/tracing.py).
ALTER TABLE jobs ADD COLUMN traceparent text;
