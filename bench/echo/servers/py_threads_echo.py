"""Thread-per-connection echo server (socketserver.ThreadingTCPServer) for
bench/run: python3 py_threads_echo.py PORT"""
import socketserver
import sys


class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        while True:
            data = sock.recv(65536)
            if not data:
                break
            sock.sendall(data)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
with Server(("127.0.0.1", port), Echo) as srv:
    print(f"echo server on 127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()
