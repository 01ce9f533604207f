"""counter: increments a key in Redis (the 003 write-up's service, with flask and redis-py).

GET /         increments the key, returns its new value
GET /counter  the value, unchanged
GET|POST /reset  sets it to 0
GET /healthz  the process is up (the proxy's check)
"""
import os
import socket

import redis
from flask import Flask, jsonify

app = Flask(__name__)
KEY = os.environ.get("COUNTER_KEY", "counter")
db = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), port=int(os.environ.get("REDIS_PORT", "6379")))
HOST = socket.gethostname()


@app.after_request
def served_by(r):
    r.headers["X-Served-By"] = HOST
    return r


@app.get("/")
def increment():
    return jsonify(counter=db.incr(KEY), key=KEY)


@app.get("/counter")
def counter():
    return jsonify(counter=int(db.get(KEY) or 0), key=KEY)


@app.route("/reset", methods=["GET", "POST"])
def reset():
    db.set(KEY, 0)
    return jsonify(counter=0, key=KEY)


@app.get("/healthz")
def healthz():
    return "ok\n"
