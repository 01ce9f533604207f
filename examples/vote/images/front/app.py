"""Vote frontend: accepts a vote, gives it a unique id, queues it in the Redis on its own node,
and only then answers 201. Runs under gunicorn (gthread).

The Redis "on its own node": the queue service is global, and each of its tasks stores the id of
its node (`{{.Node.ID}}`, templated by Swarm into NODE_ID) under the key `node`. This frontend
knows its own node id the same way; it resolves `tasks.queue` (every queue task, over the overlay
network) and keeps the one whose `node` matches. No port is published for Redis.

A queue that is stopping sets `draining` and refuses pushes from then on (the check and the push
are one Lua script, so there is no gap between them); the frontend then queues the vote in
another node's queue, and /healthz fails so that the proxy sends votes to other frontends.
"""
import json
import os
import socket
import threading
import time
import uuid

import redis
from flask import Flask, jsonify, request

NODE_ID = os.environ.get("NODE_ID", "")
QUEUE_HOST = os.environ.get("QUEUE_HOST", "tasks.queue")
HOSTNAME = socket.gethostname()
CHOICES = ("cats", "dogs")
# -1 when the queue is draining, else the queue's length after the push.
PUSH = """
if redis.call('exists', 'draining') == 1 then return -1 end
return redis.call('lpush', KEYS[1], ARGV[1])
"""

app = Flask(__name__)
_lock = threading.Lock()
_local = None  # redis.Redis of the queue on this node


def queues():
    """A client for every queue task."""
    try:
        infos = socket.getaddrinfo(QUEUE_HOST, 6379, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return []
    return [
        redis.Redis(host=ip, port=6379, socket_timeout=2, socket_connect_timeout=2)
        for ip in sorted({i[4][0] for i in infos})
    ]


def find_local_queue():
    """The queue task on this node, or None."""
    for r in queues():
        try:
            node = r.get("node")
        except redis.RedisError:
            continue
        if node is not None and node.decode() == NODE_ID:
            return r
    return None


def local_queue():
    global _local
    with _lock:
        if _local is None:
            _local = find_local_queue()
        return _local


def forget(r):
    global _local
    with _lock:
        if _local is r:
            _local = None


def push(raw):
    """Queue `raw` in this node's queue, else in any other that takes it. True when queued."""
    r = local_queue()
    if r is not None:
        try:
            if r.eval(PUSH, 1, "votes", raw) >= 0:
                return True
        except redis.RedisError:
            forget(r)
    for other in queues():
        try:
            if other.eval(PUSH, 1, "votes", raw) >= 0:
                return True
        except redis.RedisError:
            continue
    return False


@app.get("/")
def index():
    return (
        "<!doctype html><title>Cats or dogs?</title><h1>Cats or dogs?</h1>"
        '<form method="post" action="/vote"><input name="voter" placeholder="your e-mail">'
        '<button name="choice" value="cats">Cats</button>'
        '<button name="choice" value="dogs">Dogs</button></form>'
        f"<p>frontend {HOSTNAME}</p>\n"
    )


@app.get("/healthz")
def healthz():
    r = local_queue()
    try:
        if r is None or r.exists("draining"):
            raise redis.RedisError("no queue on this node, or it is draining")
        return jsonify(ok=True, frontend=HOSTNAME)
    except redis.RedisError as e:
        forget(r)
        return jsonify(ok=False, error=str(e)), 503


@app.post("/vote")
def vote():
    data = request.get_json(silent=True) if request.is_json else request.form
    data = data or {}
    voter = str(data.get("voter", "")).strip()
    choice = str(data.get("choice", "")).strip()
    if not voter or choice not in CHOICES:
        return jsonify(error="want voter and choice (cats|dogs)"), 400
    item = {
        "id": uuid.uuid4().hex,
        "voter": voter,
        "choice": choice,
        "ts": time.time_ns(),
        "frontend": HOSTNAME,
        "node": NODE_ID,
    }
    if not push(json.dumps(item)):
        return jsonify(error="no queue takes votes"), 503
    # Accepted: it is in a queue. From here a worker will count it exactly once.
    return jsonify(id=item["id"]), 201
