-- Idempotent creates: the first response to (caller, method, request_id) is kept and replayed.
CREATE TABLE request_ids (
    caller       text        NOT NULL,
    method       text        NOT NULL,
    request_id   text        NOT NULL,
    request_hash text        NOT NULL,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, method, request_id)
);
CREATE INDEX request_ids_created_at ON request_ids (created_at);
