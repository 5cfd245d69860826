"""Benchmarks: `make bench` runs `python -m benchmarks` (end to end, against
the original single-process design); `benchmarks.ingest` measures one TCP
worker's ingestion rate against one PUBLISH per line."""
