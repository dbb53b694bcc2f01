//! Wire formats between processes: the master's control datagrams ([`control`]). (The uwsgi
//! packet of spool files is `spool::packet`; RPC's packets will join it here.)

pub mod control;
