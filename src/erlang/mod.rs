//! uWSGI's Erlang C-node, without erl_interface: this process becomes a (hidden) node of an
//! Erlang cluster through the distribution protocol of the `erl_dist` crate (EPMD registration,
//! the cookie handshake, messages), and converts terms to the values the Python side maps
//! (`term`).

pub mod check;
pub mod node;
pub mod term;

pub use node::{Dest, Event, Node};
pub use term::Value;
