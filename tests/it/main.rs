//! netscript's integration tests: one binary, one module per area, each
//! talking to real peers (CPython, servers on loopback) through scripts.

mod util;

mod capture;
mod codec;
mod compress;
mod dispatch;
mod dns;
mod docs;
mod faults;
mod frame;
mod html;
mod http_client;
mod http_server;
mod load;
mod load_report;
mod mail;
mod memcache;
mod permissions;
mod repl;
mod replay;
mod runner;
mod structs;
mod tasks;
mod tcp;
mod tls;
mod tls_certs;
mod url;
mod watch;
mod workers;
mod zmq;
