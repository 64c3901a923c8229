"""Two WHOIS servers on loopback: a registry that refers every query to a
registrar (with "refer: 127.0.0.1:PORT", as IANA refers to registries),
and the registrar, which answers. Prints "REGISTRY_PORT REGISTRAR_PORT"
when both listen; serves until killed.
"""

import socketserver
import threading


def make(answer):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            query = self.rfile.readline().decode().strip()
            self.wfile.write(answer(query).encode())

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


registrar = make(lambda q: f"Domain Name: {q.upper()}\r\nRegistrar: Loopback Registrar\r\nStatus: active\r\n")
port = registrar.server_address[1]
registry = make(lambda q: f"% registry answer for {q}\r\nrefer: 127.0.0.1:{port}\r\n")
print(registry.server_address[1], port, flush=True)
threading.Event().wait()
