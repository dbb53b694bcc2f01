//! The uwsgi wire protocol and the other formats between processes: the packet codec shared
//! by spool files and RPC ([`packet`]), RPC's request and reply formats on top of it ([`rpc`]),
//! and the master's control datagrams ([`control`]). Pure: no I/O.

pub mod control;
pub mod packet;
pub mod rpc;
