"""Benchmark server: the same two routes on http.server with a thread per connection."""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        m = re.fullmatch(r"/items/([^/]+)", self.path)
        if self.path == "/":
            body, ctype = b"hello", "text/html; charset=utf-8"
        elif m:
            body, ctype = json.dumps({"id": m.group(1), "name": "item"}).encode(), "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 4096
    daemon_threads = True


port = int(sys.argv[1])
srv = Server(("127.0.0.1", port), Handler)
print(f"listening on 127.0.0.1:{port}", flush=True)
srv.serve_forever()
