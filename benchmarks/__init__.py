"""`make bench`: Sensei's benchmarks. Not tests: nothing here asserts on timing.

`python -m benchmarks` starts the suite on a fresh embedded PostgreSQL (`stack`), runs the
scenarios (`scenarios`, `comparisons`), each line driven by a separate load-generator
process (`loadgen`) and compared with a baseline measured in the same run (`baselines`),
and writes `benchmarks/RESULTS.md` (`report`, plus the hand-written `ANALYSIS.md`).
`--profile` samples the services with py-spy meanwhile (`profiling`).
"""
