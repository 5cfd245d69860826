"""Code shared by the three kinds of process: the Redis data layout and
message envelope (`protocol`), the child side of the supervisor's
readiness / parent-death / socket hand-over protocol (`lifecycle`), the
restart and reconnect back-off (`backoff`) and log set-up (`logs`).

`tcp_worker` and `web` meet only through what is defined here."""
