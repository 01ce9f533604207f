#!/usr/bin/env python3
"""twip sample news app: Python 3 stdlib only.

GET /        HTML page listing the news, with the app version and a form to add one
GET /news    JSON list of news items
POST /news   add an item: JSON {"title": ..., "body": ...} or a form (title, body)
GET /healthz 200 "ok"; 503 "draining" once SIGTERM was received

Items live in an append-only journal of JSON lines, $DATA_DIR/news.jsonl, fsynced on every write
(the Prevayler idea: the journal is the database). Several processes may share it (flock).
Every response carries X-App-Version and X-Served-By (the container's hostname).
On SIGTERM: healthz answers 503 for $LAME_DUCK_SECONDS while requests are still served, then the
server stops accepting, lets requests in flight finish, and exits 0. $START_DELAY_SECONDS (default
0) waits that long before listening: a slow start.
"""
import fcntl, html, json, os, signal, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

VERSION = os.environ.get("APP_VERSION", "dev")
DATA_DIR = os.environ.get("DATA_DIR", "/data")
PORT = int(os.environ.get("PORT", "8080"))
LAME_DUCK = float(os.environ.get("LAME_DUCK_SECONDS", "3"))
HOST = socket.gethostname()
DRAINING = threading.Event()


class Counter:  # requests being handled now; shutdown waits for it to reach 0
    def __init__(self):
        self.n, self.lock = 0, threading.Lock()

    def __enter__(self):
        with self.lock:
            self.n += 1

    def __exit__(self, *exc):
        with self.lock:
            self.n -= 1


INFLIGHT = Counter()


class Journal:
    def __init__(self, path):
        self.path, self.items, self.offset, self.lock = path, [], 0, threading.Lock()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            data = f.read()
            if data and not data.endswith(b"\n"):  # a write torn by a crash: drop it, like a log replay
                f.truncate(data.rfind(b"\n") + 1)
                os.fsync(f.fileno())
        dfd = os.open(os.path.dirname(path), os.O_RDONLY)  # make the file's creation durable too
        os.fsync(dfd)
        os.close(dfd)

    def _catch_up(self, f):  # read what other writers (or we) appended since last time
        f.seek(self.offset)
        for line in f:
            if not line.endswith(b"\n"):
                break
            self.offset += len(line)
            try:
                self.items.append(json.loads(line))
            except ValueError:
                pass

    def list(self):
        with self.lock, open(self.path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH)
            self._catch_up(f)
            return list(self.items)

    def append(self, title, body):
        with self.lock, open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            self._catch_up(f)
            item = {"id": len(self.items) + 1, "title": title, "body": body,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "by": HOST, "version": VERSION}
            f.write(json.dumps(item).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
            self._catch_up(f)
            return item


JOURNAL = Journal(os.path.join(DATA_DIR, "news.jsonl"))

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Company News</title>
<link rel="stylesheet" href="/styles/site.css"></head>
<body><header><img src="/images/logo.svg" alt="" width="48" height="48"><h1>Company News</h1></header>
<main><ul class="news">{items}</ul>
<form method="post" action="/news"><input name="title" placeholder="Title" required>
<textarea name="body" placeholder="Text"></textarea><button>Publish</button></form></main>
<footer>version <span id="version">{version}</span> &middot; served by <span id="served-by">{host}</span></footer>
</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "twip-web"
    timeout = 60  # idle keep-alive connections are closed after this

    def reply(self, status, body, ctype="text/plain; charset=utf-8", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-App-Version", VERSION)
        self.send_header("X-Served-By", HOST)
        for k, v in headers:
            self.send_header(k, v)
        if DRAINING.is_set():  # tell keep-alive clients to go elsewhere
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        with INFLIGHT:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                if DRAINING.is_set():
                    self.reply(503, "draining\n")
                else:
                    self.reply(200, "ok\n")
            elif path == "/news":
                self.reply(200, json.dumps(JOURNAL.list()), "application/json")
            elif path == "/":
                items = "".join(f"<li><h2>{html.escape(i['title'])}</h2><p>{html.escape(i.get('body') or '')}</p></li>"
                                for i in reversed(JOURNAL.list()))
                self.reply(200, PAGE.format(items=items, version=html.escape(VERSION), host=html.escape(HOST)),
                           "text/html; charset=utf-8")
            else:
                self.reply(404, "not found\n")

    do_HEAD = do_GET

    def do_POST(self):
        with INFLIGHT:
            if self.path.split("?", 1)[0] != "/news":
                return self.reply(404, "not found\n")
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            is_json = self.headers.get("Content-Type", "").startswith("application/json")
            try:
                if is_json:
                    doc = json.loads(raw or b"{}")
                    title, body = doc.get("title"), doc.get("body", "")
                else:
                    form = parse_qs(raw.decode("utf-8"))
                    title, body = form.get("title", [""])[0], form.get("body", [""])[0]
            except (ValueError, AttributeError, UnicodeDecodeError):
                return self.reply(400, "bad request body\n")
            if not isinstance(title, str) or not title.strip() or not isinstance(body, (str, type(None))):
                return self.reply(400, "a non-empty string 'title' is required\n")
            item = JOURNAL.append(title.strip(), body or "")
            if is_json:
                self.reply(201, json.dumps(item), "application/json")
            else:  # a browser form: back to the page
                self.reply(303, "", headers=[("Location", "/")])

    def log_message(self, fmt, *args):
        if os.environ.get("ACCESS_LOG") == "1":
            sys.stderr.write(f"{self.address_string()} {fmt % args}\n")


def main():
    # A slow start (tests: a gap with nothing listening that outlasts a client's timeout).
    start_delay = float(os.environ.get("START_DELAY_SECONDS", "0"))
    if start_delay > 0:
        print(f"starting in {start_delay}s", file=sys.stderr, flush=True)
        time.sleep(start_delay)
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("", PORT), Handler)

    def drain():
        time.sleep(LAME_DUCK)  # health checks see 503; requests keep being served meanwhile
        server.shutdown()  # stop accepting; serve_forever() returns

    def on_term(signum, _frame):
        if not DRAINING.is_set():
            print(f"signal {signum}: draining for {LAME_DUCK}s", file=sys.stderr, flush=True)
            DRAINING.set()
            threading.Thread(target=drain, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print(f"twip-web {VERSION} on :{PORT} as {HOST}, journal {JOURNAL.path} ({len(JOURNAL.list())} items)",
          file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    deadline = time.monotonic() + 5  # let requests in flight finish (idle keep-alive connections just close)
    while INFLIGHT.n and time.monotonic() < deadline:
        time.sleep(0.05)
    print("stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
