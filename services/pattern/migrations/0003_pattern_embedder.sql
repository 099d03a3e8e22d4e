-- Which embedder's space each pattern's vector is in (issue 15): vectors of two embedders
-- never meet in one search. A vector embedded from text is re-embedded by the indexer when
-- the configured embedder changes (ReindexPatterns); a caller's vector of another embedder
-- becomes STALE until a new one is sent. Rows from before were embedded by feature hashing
-- (the only built-in embedder then) or sent by callers in its space.
ALTER TABLE patterns ADD COLUMN embedder text NOT NULL DEFAULT '';
UPDATE patterns SET embedder = 'feature-hashing-v1/' || cardinality(embedding);
