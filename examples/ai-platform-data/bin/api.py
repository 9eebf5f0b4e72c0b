"""The platform's API: counts visits in Redis and records them in Postgres.

Python's standard library plus Debian's python3-psycopg2 (no pip): Redis is
spoken directly (RESP over a socket), Postgres through psycopg2. Listens on
$PORT; finds Redis on 127.0.0.1:$REDIS_PORT and Postgres through the PG*
variables.

  GET /health  200 when both Redis and Postgres answer
  GET /visit   counts and records a visit: {"hits": N, "rows": M, ...}
  GET /stats   the same numbers without a visit
"""

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

REDIS = ("127.0.0.1", int(os.environ.get("REDIS_PORT", "6379")))
VERSION = os.environ.get("API_VERSION", "v1")


def redis(*args):
    """Send one command, return its reply (integers, simple and bulk strings)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(REDIS, timeout=2) as s:
        s.sendall(out)
        f = s.makefile("rb")
        line = f.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        return rest.decode()


def postgres(sql, params=()):
    """Run one statement in its own transaction; the first row back, if any."""
    conn = psycopg2.connect(connect_timeout=2)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone() if cur.description else None
    finally:
        conn.close()


def stats():
    hits = int(redis("GET", "visits") or 0)
    rows = postgres("SELECT count(*) FROM visits")[0]
    schema = postgres("SELECT max(version) FROM schema_migrations")[0]
    return {"hits": hits, "rows": rows, "schema": schema, "version": VERSION}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            if self.path == "/health":
                body = {"redis": redis("PING"), "postgres": postgres("SELECT 1")[0]}
            elif self.path == "/visit":
                redis("INCR", "visits")
                agent = self.headers.get("User-Agent", "")
                postgres("INSERT INTO visits (path, agent) VALUES (%s, %s)", (self.path, agent))
                body = stats()
            elif self.path == "/stats":
                body = stats()
            else:
                self.reply(404, {"error": "not found"})
                return
            self.reply(200, body)
        except Exception as e:  # a data service is down: say which, as a 503
            self.reply(503, {"error": f"{type(e).__name__}: {e}"})

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print("api:", fmt % args, flush=True)


if __name__ == "__main__":
    port = int(os.environ["PORT"])
    print(f"api {VERSION} listening on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
