//! netscript's integration tests: one binary, one module per area, each
//! talking to real peers (CPython, servers on loopback) through scripts.

mod util;

mod codec;
mod compress;
mod dispatch;
mod dns;
mod docs;
mod frame;
mod mail;
mod permissions;
mod repl;
mod runner;
mod structs;
mod tasks;
mod tcp;
mod watch;
mod zmq;
