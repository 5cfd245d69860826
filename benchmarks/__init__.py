"""Benchmarks (speed, never run by the tests): `make bench` runs
`python -m benchmarks` (end to end, against the original single-process
design); `benchmarks.ingest` measures one TCP worker's ingestion against one
PUBLISH per line; `benchmarks.recovery` times restarts and shutdown;
`benchmarks.variants` and `benchmarks.profile` measure what each
implementation choice is worth. The chaos run (`benchmarks.chaos`, `make
chaos`) checks correctness, not speed. Process helpers come from `testkit`."""
