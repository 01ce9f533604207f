"""Vote worker: moves votes from every queue into Postgres, each exactly once.

For each queue (every task of `tasks.queue`, re-resolved every 2 s; a queue once seen is kept
until it stops answering, so a draining queue, already gone from DNS, is still emptied):

1. LMOVE up to BATCH votes from `votes` to `processing:SLOT`, SLOT being this task's
   `{{.Task.Slot}}` (WORKER_SLOT). A worker that is killed leaves its votes there, and the task
   Swarm starts in its place has the same slot: it finishes them first (step 0).
2. One transaction: INSERT each vote ON CONFLICT (vote_id) DO NOTHING; only a vote that was
   inserted adds 1 to the tally and updates its voter's ballot (the latest vote by the
   frontend's timestamp wins: one ballot per voter).
3. LREM the batch from `processing:SLOT`.

A crash between 2 and 3 replays votes that are already in: step 2 makes that a no-op.

WORKER_FAULT breaks this on purpose, for the test's negative controls:
- `ack-first`: the batch is removed from Redis before it is committed (a kill loses it);
- `no-dedup`: the tally counts every vote it sees, inserted or not (a replay counts twice).
WORKER_HOLD_MS pauses inside each batch, where a kill does the most damage.
"""
import json
import os
import signal
import socket
import time

import psycopg2
import redis

SLOT = os.environ.get("WORKER_SLOT", "1")
QUEUE_HOST = os.environ.get("QUEUE_HOST", "tasks.queue")
DB_DSN = os.environ.get("DB_DSN", "host=db user=postgres dbname=votes")
BATCH = int(os.environ.get("WORKER_BATCH", "100"))
HOLD = int(os.environ.get("WORKER_HOLD_MS", "0")) / 1000
FAULT = os.environ.get("WORKER_FAULT", "")
PROCESSING = f"processing:{SLOT}"
# Exists, holding the time it was made, while a batch is between its commit and its
# acknowledgement (tests kill the worker then; see window_opens).
IN_FLIGHT = "/tmp/in-flight"

SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    vote_id  text PRIMARY KEY,
    voter    text NOT NULL,
    choice   text NOT NULL,
    ts       bigint NOT NULL,
    frontend text NOT NULL,
    -- the node of the frontend that accepted it, and of the queue it was taken from
    front_node text NOT NULL,
    queue_node text NOT NULL,
    worker   text NOT NULL,
    counted  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS votes_voter ON votes (voter);
CREATE TABLE IF NOT EXISTS ballots (
    voter   text PRIMARY KEY,
    choice  text NOT NULL,
    ts      bigint NOT NULL,
    vote_id text NOT NULL
);
CREATE TABLE IF NOT EXISTS tally (
    choice text PRIMARY KEY,
    n      bigint NOT NULL
);
"""

stopping = False


def on_term(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)


def log(msg):
    print(f"worker {SLOT}: {msg}", flush=True)


def connect_db():
    while not stopping:
        try:
            conn = psycopg2.connect(DB_DSN, connect_timeout=3)
            with conn, conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(8)")
                cur.execute(SCHEMA)
            return conn
        except psycopg2.Error as e:
            log(f"database: {e}".strip())
            time.sleep(1)
    return None


def commit(conn, items, queue_node):
    with conn, conn.cursor() as cur:
        for raw in items:
            v = json.loads(raw)
            cur.execute(
                "INSERT INTO votes (vote_id, voter, choice, ts, frontend, front_node, queue_node, worker)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (vote_id) DO NOTHING",
                (v["id"], v["voter"], v["choice"], v["ts"], v["frontend"], v["node"], queue_node, SLOT),
            )
            inserted = cur.rowcount == 1
            if inserted or FAULT == "no-dedup":
                cur.execute(
                    "INSERT INTO tally (choice, n) VALUES (%s, 1)"
                    " ON CONFLICT (choice) DO UPDATE SET n = tally.n + 1",
                    (v["choice"],),
                )
            if inserted:
                cur.execute(
                    "INSERT INTO ballots (voter, choice, ts, vote_id) VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (voter) DO UPDATE SET choice = EXCLUDED.choice,"
                    " ts = EXCLUDED.ts, vote_id = EXCLUDED.vote_id"
                    " WHERE (ballots.ts, ballots.vote_id) < (EXCLUDED.ts, EXCLUDED.vote_id)",
                    (v["voter"], v["choice"], v["ts"], v["id"]),
                )


def ack(q, items):
    p = q.pipeline(transaction=False)
    for raw in items:
        p.lrem(PROCESSING, 1, raw)
    p.execute()


def take(q):
    """Up to BATCH votes moved into this slot's processing list (oldest first)."""
    p = q.pipeline(transaction=False)
    for _ in range(BATCH):
        p.lmove("votes", PROCESSING, "RIGHT", "LEFT")
    return [x for x in p.execute() if x is not None]


def window_opens():
    """The batch is now committed and not acknowledged (or, ack-first, acknowledged and not
    committed): a kill from here to the end of the batch hits the step that matters."""
    with open(IN_FLIGHT, "w") as f:
        f.write(f"{time.time():.3f}\n")


def process(conn, q, node, items):
    try:
        if FAULT == "ack-first":
            ack(q, items)
            window_opens()
            time.sleep(HOLD)
            commit(conn, items, node)
        else:
            commit(conn, items, node)
            window_opens()
            time.sleep(HOLD)
            ack(q, items)
    finally:
        if os.path.exists(IN_FLIGHT):
            os.unlink(IN_FLIGHT)


def resolve():
    try:
        infos = socket.getaddrinfo(QUEUE_HOST, 6379, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return set()
    return {i[4][0] for i in infos}


def main():
    log(f"slot {SLOT}, batch {BATCH}, hold {HOLD}s{', FAULT ' + FAULT if FAULT else ''}")
    conn = connect_db()
    queues = {}  # ip -> [redis client, recovered, the queue's node id]
    last_resolve = 0.0
    while not stopping:
        if time.monotonic() - last_resolve > 2:
            last_resolve = time.monotonic()
            for ip in resolve() - queues.keys():
                queues[ip] = [redis.Redis(host=ip, port=6379, socket_timeout=5, socket_connect_timeout=2), False, None]
                log(f"queue {ip}")
        busy = False
        for ip, entry in list(queues.items()):
            if stopping:
                break
            q = entry[0]
            try:
                if entry[2] is None:
                    entry[2] = (q.get("node") or b"?").decode()
                if not entry[1]:
                    # Step 0: what a killed worker of this slot left in flight.
                    left = q.lrange(PROCESSING, 0, -1)
                    if left:
                        log(f"recovering {len(left)} vote(s) from {ip}")
                        commit(conn, left, entry[2])
                        ack(q, left)
                    entry[1] = True
                items = take(q)
                if items:
                    busy = True
                    process(conn, q, entry[2], items)
            except redis.RedisError as e:
                if ip not in resolve():
                    log(f"queue {ip} gone ({e})")
                    del queues[ip]
                else:
                    entry[1] = False
            except psycopg2.Error as e:
                log(f"database: {e}".strip())
                try:
                    conn.close()
                except psycopg2.Error:
                    pass
                conn = connect_db()
                entry[1] = False  # recover this slot's list (it still holds the batch)
        if not busy:
            time.sleep(0.05)
    log("stopped")


if __name__ == "__main__":
    main()
