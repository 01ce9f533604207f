"""The vote queue: redis-server, plus what makes it safe to stop.

- At start it stores this node's id (NODE_ID, Swarm's `{{.Node.ID}}`) under `node`, so the
  frontend on the same node can find it among `tasks.queue`.
- On SIGTERM (a drain, `twip swarm leave`, `docker service update`) it does not stop at once:
  it sets `draining`, after which no frontend's push succeeds here (frontends push with a Lua
  script that checks `draining` first; they queue the vote elsewhere, and their health check
  fails so the proxy sends votes to other nodes). Then it waits until the queue and every
  worker's processing list are empty, and only then shuts Redis down. Workers keep draining it
  meanwhile. The service's stop_grace_period must cover this (DRAIN_TIMEOUT).
"""
import os
import signal
import subprocess
import sys
import time

import redis

NODE_ID = os.environ.get("NODE_ID", "")
DRAIN_TIMEOUT = float(os.environ.get("DRAIN_TIMEOUT", "50"))

server = subprocess.Popen(
    ["redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no",
     "--save", "", "--appendonly", "no", "--dir", "/tmp"]
)
r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
for _ in range(100):
    try:
        r.set("node", NODE_ID)
        break
    except redis.RedisError:
        time.sleep(0.1)
else:
    sys.exit("redis-server did not start")
print(f"queue: node {NODE_ID}", flush=True)

stopping = False


def on_term(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)


def pending():
    n = r.llen("votes")
    for key in r.scan_iter("processing:*"):
        n += r.llen(key)
    return n


while not stopping:
    if server.poll() is not None:
        sys.exit(f"redis-server exited with {server.returncode}")
    time.sleep(0.2)

r.set("draining", "1")
deadline = time.monotonic() + DRAIN_TIMEOUT
empty_since = None
while time.monotonic() < deadline:
    try:
        p = pending()
    except redis.RedisError as e:
        print(f"queue: {e}", flush=True)
        break
    if p == 0:
        # Nothing can be pushed any more; zero for a second, read after read, is drained.
        empty_since = empty_since or time.monotonic()
        if time.monotonic() - empty_since >= 1:
            print("queue: drained, stopping", flush=True)
            break
    else:
        empty_since = None
        print(f"queue: draining: {p} vote(s) pending", flush=True)
    time.sleep(0.5)
else:
    print(f"queue: drain timeout with {pending()} vote(s) pending", flush=True)
try:
    r.shutdown(nosave=True)
except redis.RedisError:
    pass
server.wait(timeout=10)
