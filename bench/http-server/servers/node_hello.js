// Benchmark server: the same two routes on Node's `http` module.
const http = require("http");
const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
  if (req.url === "/") {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("hello");
    return;
  }
  const m = /^\/items\/([^/]+)$/.exec(req.url);
  if (m) {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ id: m[1], name: "item" }));
    return;
  }
  res.writeHead(404);
  res.end();
});
server.keepAliveTimeout = 600000;
server.listen(port, "127.0.0.1", 4096, () => console.log(`listening on 127.0.0.1:${port}`));
