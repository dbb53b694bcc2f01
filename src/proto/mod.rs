//! The uwsgi wire protocol: the packet codec shared by spool files and RPC ([`packet`]) and
//! RPC's request and reply formats on top of it ([`rpc`]). Pure: no I/O.

pub mod packet;
pub mod rpc;
