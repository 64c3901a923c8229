"""A dynamic HTTP/1.1 server for the http:: client tests.

Prints its port on the first line. Endpoints:
  /echo[...]           JSON: method, path, query, headers (in order), body (latin-1 text)
  /status/N            status N with a short body (none for 1xx/204/304)
  /redirect/N?to=URL   status N with Location URL; /loop?n=K redirects forever
  /setcookie?k=v&...   Set-Cookie for each pair; /cookies echoes the Cookie header
  /login (POST form)   sets a session cookie and 303s to /private; /private needs it
  /auth                401 unless Basic ann:secret
  /multipart           parses a multipart/form-data body into JSON
  /slow?delay=S        waits S seconds before answering
  /slowbody?delay=S    sends the head, waits S seconds, then the body
  /lie                 announces Content-Length 100, sends 10 bytes and closes
  /bigheader?n=N       a header of N bytes
  /chunked             a chunked body of several lines
  /encoded/CODING      "hello, compressed world" x 100 in gzip, deflate, rawdeflate, zstd or br
  /close               a response with Connection: close
  /page                an HTML page with links and a table
  /forms               one form per method and enctype, every kind of control,
                       all submitting to /submitted
  /submitted           what arrived: method, target, Content-Type and body (hex),
                       the multipart boundary replaced by BOUNDARY, in <pre id=out>
  /login (GET)         the login form
  /connid              the client port, to see a kept-alive connection
  /charset?cs=NAME     "café ü €" encoded in NAME, with that charset in Content-Type
  /early               a 103 Early Hints and a 100 Continue before the 200
"""

import base64
import email.parser
import email.policy
import gzip
import html
import json
import sys
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import brotli
import zstandard

PLAIN = b"hello, compressed world\n" * 100

PAGE = b"""<!doctype html><html><head><title>Ports</title></head><body>
<h1>Well-known ports</h1>
<a href="/a">first</a> <a href="b/c?x=1">second</a> <a href="http://example.com/">third</a>
<table id="ports"><tr><th>port</th><th>service</th></tr>
<tr><td>22</td><td>ssh</td></tr><tr><td>80</td><td>http</td></tr><tr><td>443</td><td>https</td></tr>
</table></body></html>"""

# One form's controls: a text input with characters the two urlencoded
# flavours (Python's and the browser's) escape differently, a hidden input
# whose name and value hold a line feed and a carriage return, checked and
# unchecked boxes, a multiple select, a textarea with line breaks, an empty
# file input, a repeated name, a quote in a name, and a submit button.
CONTROLS = """<input name="q" value="*~ !'()&eacute;&amp;=+%">
<input type="hidden" name="n&#10;l" value="v&#13;w&#13;&#10;x">
<input type="checkbox" name="c" value="1" checked><input type="checkbox" name="c" value="2">
<select name="s" multiple><option selected>a</option><option>b</option><option selected value="c c">C</option></select>
<textarea name="t">line1
line2</textarea>
<input type="file" name="f">
<input name='say "hi"' value="second">
<input name="q" value="again">
<button name="commit" value="Save" id="save{i}">Save</button>"""

FORMS = "<!doctype html><html><head><meta charset='utf-8'><title>Forms</title></head><body>" + "".join(
    f"<form action='/submitted?old=1#top' {attrs}>{CONTROLS.format(i=i)}</form>"
    for i, attrs in enumerate(["", "method=post", "method=post enctype='multipart/form-data'",
                               "method=post enctype=text/plain"])) + "</body></html>"

LOGIN = b"""<!doctype html><html><body><form action="/login" method="post">
<input name="user"><input type="password" name="password"><input type="submit" value="Log in">
</form></body></html>"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, status, body=b"", headers=(), ctype="text/plain"):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status >= 200 and status not in (204, 304):
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.wfile.write(body)

    def handle_any(self):
        url = urlsplit(self.path)
        q = dict(parse_qsl(url.query, keep_blank_values=True))
        parts = url.path.strip("/").split("/")
        head = parts[0]
        data = self.body()
        if head == "echo":
            out = {
                "method": self.command,
                "path": url.path,
                "query": url.query,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": data.decode("latin-1"),
            }
            self.send(200, json.dumps(out).encode(), ctype="application/json")
        elif head == "status":
            self.send(int(parts[1]), b"status body")
        elif head == "redirect":
            self.send(int(parts[1]), b"moved", [("Location", q.get("to", "/echo"))])
        elif head == "loop":
            n = int(q.get("n", "0"))
            self.send(302, b"", [("Location", f"/loop?n={n + 1}")])
        elif head == "setcookie":
            self.send(200, b"ok", [("Set-Cookie", f"{k}={v}; Path=/") for k, v in q.items()])
        elif head == "cookies":
            self.send(200, (self.headers.get("Cookie") or "").encode())
        elif head == "login" and self.command == "GET":
            self.send(200, LOGIN, ctype="text/html; charset=utf-8")
        elif head == "login":
            form = dict(parse_qsl(data.decode()))
            if form.get("user") == "ann" and form.get("password") == "secret":
                self.send(303, b"", [("Set-Cookie", "session=tok123; Path=/; HttpOnly"), ("Location", "/private")])
            else:
                self.send(403, b"bad login")
        elif head == "private":
            cookie = self.headers.get("Cookie") or ""
            if "session=tok123" in cookie:
                self.send(200, b"<html><body><p id='who'>welcome ann</p></body></html>", ctype="text/html")
            else:
                self.send(401, b"log in first")
        elif head == "auth":
            want = "Basic " + base64.b64encode(b"ann:secret").decode()
            if self.headers.get("Authorization") == want:
                self.send(200, b"authorized")
            else:
                self.send(401, b"no", [("WWW-Authenticate", 'Basic realm="t"')])
        elif head == "multipart":
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + data)
            out = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if part.get_filename():
                    out[name] = {"filename": part.get_filename(), "content_type": part.get_content_type(),
                                 "content": payload.decode("latin-1")}
                else:
                    out[name] = payload.decode()
            self.send(200, json.dumps(out).encode(), ctype="application/json")
        elif head == "slow":
            time.sleep(float(q.get("delay", "2")))
            self.send(200, b"late")
        elif head == "slowbody":
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.flush()
            time.sleep(float(q.get("delay", "2")))
            self.wfile.write(b"late")
        elif head == "lie":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
        elif head == "bigheader":
            self.send(200, b"ok", [("X-Big", "x" * int(q.get("n", "100000")))])
        elif head == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                line = f"line {i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif head == "encoded":
            coding = parts[1]
            body = {
                "gzip": lambda: gzip.compress(PLAIN),
                "deflate": lambda: zlib.compress(PLAIN),
                "rawdeflate": lambda: zlib.compress(PLAIN, wbits=-15),
                "zstd": lambda: zstandard.ZstdCompressor().compress(PLAIN),
                "br": lambda: brotli.compress(PLAIN),
            }[coding]()
            name = "deflate" if coding == "rawdeflate" else coding
            self.send(200, body, [("Content-Encoding", name)])
        elif head == "close":
            self.send(200, b"bye", [("Connection", "close")])
            self.close_connection = True
        elif head == "forms":
            self.send(200, FORMS.encode(), ctype="text/html; charset=utf-8")
        elif head == "submitted":
            ctype = self.headers.get("Content-Type") or ""
            boundary = ctype.partition("boundary=")[2]
            if boundary:
                ctype = ctype.replace(boundary, "BOUNDARY")
                data = data.replace(boundary.encode(), b"BOUNDARY")
            out = json.dumps({"method": self.command, "target": self.path, "type": ctype, "body": data.hex()})
            page = f"<!doctype html><html><body><pre id='out'>{html.escape(out)}</pre></body></html>"
            self.send(200, page.encode(), ctype="text/html; charset=utf-8")
        elif head == "page":
            self.send(200, PAGE, ctype="text/html; charset=utf-8")
        elif head == "charset":
            cs = q.get("cs", "utf-8")
            self.send(200, "café ü €".encode(cs, errors="replace"), ctype=f"text/plain; charset={cs}")
        elif head == "early":
            self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
            self.send(200, b"after the hints")
        elif head == "connid":
            self.send(200, str(self.client_address[1]).encode())
        else:
            self.send(404, b"not found")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
