//! The server crate end to end, one test binary: the store and its migrations, and the HTTP
//! API served on a real socket, tried with every leak path we know of.

mod api;
mod harness;
mod store;
