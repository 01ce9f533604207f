"""Vote frontend: accepts a vote, gives it a unique id, queues it in the Redis on its own node,
and only then answers 201. Runs under gunicorn (gthread).

The Redis "on its own node": the queue service is global, and each of its tasks stores the id of
its node (`{{.Node.ID}}`, templated by Swarm into NODE_ID) under the key `node`. This frontend
knows its own node id the same way; it resolves `tasks.queue` (every queue task, over the overlay
network) and keeps the one whose `node` matches. No port is published for Redis.
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

app = Flask(__name__)
_lock = threading.Lock()
_local = None  # redis.Redis of the queue on this node


def find_local_queue():
    """The queue task on this node, or None."""
    try:
        infos = socket.getaddrinfo(QUEUE_HOST, 6379, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return None
    for ip in sorted({i[4][0] for i in infos}):
        r = redis.Redis(host=ip, port=6379, socket_timeout=2, socket_connect_timeout=2)
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


def heartbeat():
    """`frontend:HOSTNAME` lives while this frontend can push: the queue's stop hook waits for it."""
    while True:
        r = local_queue()
        if r is not None:
            try:
                r.set(f"frontend:{HOSTNAME}:{os.getpid()}", "1", ex=3)
            except redis.RedisError:
                forget(r)
        time.sleep(1)


threading.Thread(target=heartbeat, daemon=True).start()


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
        if r is None or r.get("draining"):
            raise redis.RedisError("no local queue, or it is draining")
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
    r = local_queue()
    if r is None:
        return jsonify(error="no queue on this node"), 503
    item = {
        "id": uuid.uuid4().hex,
        "voter": voter,
        "choice": choice,
        "ts": time.time_ns(),
        "frontend": HOSTNAME,
    }
    try:
        # Also while the queue drains (this node is leaving; /healthz already sends the proxy
        # elsewhere): the queue stops only after this frontend is gone and its votes are counted.
        r.lpush("votes", json.dumps(item))
    except redis.RedisError as e:
        forget(r)
        return jsonify(error=f"queue: {e}"), 503
    # Accepted: it is in the queue. From here a worker will count it exactly once.
    return jsonify(id=item["id"]), 201
