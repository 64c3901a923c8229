// Node `net` echo server for bench/run: node node_echo.js PORT
const net = require('net');
const port = Number(process.argv[2] || 9000);
const server = net.createServer((sock) => {
  sock.on('data', (d) => sock.write(d));
  sock.on('error', () => {});
});
server.listen({ host: '127.0.0.1', port, backlog: 1024 }, () => {
  console.log(`echo server on 127.0.0.1:${server.address().port}`);
});
