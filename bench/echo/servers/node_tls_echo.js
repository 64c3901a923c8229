// Node `tls` echo server for bench/run: node node_tls_echo.js PORT CERT KEY
const tls = require('tls');
const fs = require('fs');
const [port, cert, key] = process.argv.slice(2);
const server = tls.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (sock) => {
  sock.on('data', (d) => sock.write(d));
  sock.on('error', () => {});
});
server.on('tlsClientError', () => {});
server.listen({ host: '127.0.0.1', port: Number(port), backlog: 1024 }, () => {
  console.log(`tls echo server on 127.0.0.1:${server.address().port}`);
});
