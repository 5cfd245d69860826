"""Process helpers shared by the tests and the benchmarks: free ports,
real child processes and a real redis-server (`procs`), and what /proc
says about a process (`procfs`)."""
