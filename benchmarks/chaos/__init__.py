"""The chaos run (`python -m benchmarks.chaos`, `make chaos`): a correctness
check, not a speed one. kill -9 under load and count that no acknowledged
line is lost: the runner (`__main__`), the load (`load`) and the verdict
(`verify`)."""
