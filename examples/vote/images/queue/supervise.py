"""The vote queue: redis-server, plus what makes it safe to stop.

- At start it stores this node's id (NODE_ID, Swarm's `{{.Node.ID}}`) under `node`, so the
  frontend on the same node can find it among `tasks.queue`.
- On SIGTERM (a drain, `twip swarm leave`, `docker service update`) it does not stop at once:
  it sets `draining`, after which no frontend's push succeeds here (frontends push with a Lua
  script that checks `draining` first; they queue the vote elsewhere, and their health check
  fails so the proxy sends votes to other nodes). Then it waits until the queue and every
  worker's processing list are empty, and only then shuts Redis down. Workers keep draining it
  meanwhile. The service's stop_grace_period must cover this (DRAIN_TIMEOUT).
- A draining queue is gone from `tasks.queue` at once, so only a worker that knew it before
  keeps emptying it; one that starts later (a replacement for a killed worker, or for the
  worker of the node that is leaving) never learns of it, and a worker that lost its
  connection to it forgets it. So when votes are still here HANDOVER_AFTER seconds into the
  drain, the queue hands them over itself: each vote (from `votes` and from every processing
  list) is pushed into another queue that takes votes, then removed here. At least once: a
  worker may also commit its copy here, and the workers' `ON CONFLICT (vote_id) DO NOTHING`
  makes the second one a no-op.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import redis

NODE_ID = os.environ.get("NODE_ID", "")
DRAIN_TIMEOUT = float(os.environ.get("DRAIN_TIMEOUT", "50"))
HANDOVER_AFTER = float(os.environ.get("HANDOVER_AFTER", "5"))
QUEUE_HOST = os.environ.get("QUEUE_HOST", "tasks.queue")
# This task's own id (two tasks of one node share NODE_ID): never hand over to itself.
QUEUE_ID = uuid.uuid4().hex
# The frontends' push: -1 when that queue is draining.
PUSH = """
if redis.call('exists', 'draining') == 1 then return -1 end
return redis.call('lpush', KEYS[1], ARGV[1])
"""

server = subprocess.Popen(
    ["redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no",
     "--save", "", "--appendonly", "no", "--dir", "/tmp"]
)
r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
for _ in range(100):
    try:
        r.set("node", NODE_ID)
        r.set("queue_id", QUEUE_ID)
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

def other_queues():
    """A client for every other queue task that takes votes."""
    try:
        infos = socket.getaddrinfo(QUEUE_HOST, 6379, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return []
    out = []
    for ip in sorted({i[4][0] for i in infos}):
        q = redis.Redis(host=ip, port=6379, socket_timeout=2, socket_connect_timeout=2)
        try:
            if q.get("queue_id") != QUEUE_ID.encode() and not q.exists("draining"):
                out.append(q)
        except redis.RedisError:
            continue
    return out


def hand_over():
    """Moves the votes still here into other queues; how many moved, or None when no other
    queue took one."""
    targets = other_queues()
    if not targets:
        return None
    moved = 0
    keys = ["votes"] + [k.decode() for k in r.scan_iter("processing:*")]
    for key in keys:
        while True:
            raw = r.lindex(key, -1)  # the oldest
            if raw is None:
                break
            for q in targets:
                try:
                    if q.eval(PUSH, 1, "votes", raw) >= 0:
                        break
                except redis.RedisError:
                    continue
            else:
                return moved or None
            # A worker may have taken it meanwhile (then nothing is removed: a copy is harmless).
            r.lrem(key, -1, raw)
            moved += 1
    return moved


r.set("draining", "1")
started = time.monotonic()
deadline = started + DRAIN_TIMEOUT
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
        if time.monotonic() - started >= HANDOVER_AFTER:
            try:
                moved = hand_over()
            except redis.RedisError as e:
                moved = None
                print(f"queue: hand-over: {e}", flush=True)
            if moved:
                print(f"queue: handed {moved} vote(s) over to other queues", flush=True)
            elif moved is None:
                print("queue: no other queue takes votes: waiting for the workers", flush=True)
    time.sleep(0.5)
else:
    print(f"queue: drain timeout with {pending()} vote(s) pending", flush=True)
try:
    r.shutdown(nosave=True)
except redis.RedisError:
    pass
server.wait(timeout=10)
