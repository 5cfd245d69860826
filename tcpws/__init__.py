"""Code shared by the three kinds of process: the Redis data layout and
message envelope (`protocol`), the child side of the supervisor's
readiness / parent-death / socket hand-over protocol (`lifecycle`), what
their command lines share (`cli`), Redis connections and the start-up wait
(`redisconn`), heartbeats (`heartbeat`), the restart and reconnect back-off
(`backoff`) and log set-up (`logs`). Also the redis-server we start
ourselves (`redis_server`) and the Procfile's `redis` entry that runs it
(`procfile_redis`).

`tcp_worker` and `web` meet only through what is defined here."""
