//! uwsgidecorators-rs core: the pure-Rust engine behind the `uwsgidecorators` Python package.
//!
//! Everything here builds and tests without Python (`cargo test`). The PyO3 binding lives in
//! `py/` behind the `python` feature, which maturin enables.

pub mod channel;
pub mod cron;
pub mod direct;
pub mod erlang;
pub mod error;
pub mod fsmon;
pub mod ipc;
pub mod master;
pub mod proto;
pub mod rpc;
pub mod signal;
pub mod spool;
pub mod supervisor;
pub mod sys;
pub mod timer;

pub use error::Error;

#[cfg(feature = "python")]
mod py;
