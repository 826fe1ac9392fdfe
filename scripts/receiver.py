#!/usr/bin/env python3
"""A local receiver for Herald's webhooks and connector calls, for trying Herald out.

Prints every request it gets (path, the Standard Webhooks headers, the JSON body) as one JSON
line, checks webhook signatures when given the endpoint's secret, and answers 204. Standard
library only.

    python3 scripts/receiver.py --port 9000 --secret whsec_...
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1024 * 1024

# Requests are handled on threads: one line is written whole, or two could interleave.
PRINT_LOCK = threading.Lock()


def signature_ok(secret, headers, body):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, id.timestamp.body)) with key = the
    base64 part of whsec_..."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if "," in s]
    return any(hmac.compare_digest(expected, g) for g in given)


def make_handler(secret, quiet):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode("utf-8", "replace")
            line = {"path": self.path, "body": parsed}
            if "webhook-id" in self.headers:
                line["webhook_id"] = self.headers["webhook-id"]
                if secret:
                    line["signature_valid"] = signature_ok(secret, self.headers, body)
            if "x-hmac" in self.headers:
                line["x_hmac"] = self.headers["x-hmac"]
            with PRINT_LOCK:
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            if not quiet:
                super().log_message(*args)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", help="the webhook endpoint's whsec_ secret, to check signatures")
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.secret, args.quiet))
    print(f"receiving on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
