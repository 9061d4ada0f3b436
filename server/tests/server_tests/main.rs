//! The server crate end to end, one test binary: the store and its migrations, and the HTTP
//! API served on a real socket, tried with every leak path we know of; the web page over HTTP
//! and in headless Chromium. The store tests and the API tests that touch the store run on
//! both SQLite and a real PostgreSQL ([`pg`]).

mod api;
mod browser;
mod harness;
mod pg;
mod sightings;
mod store;
mod transport;
mod web;
