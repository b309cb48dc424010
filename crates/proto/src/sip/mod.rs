//! SIP (RFC 3261): messages, URIs, digest authentication, transactions and
//! the user agent, sans-IO.

pub mod digest;
pub mod message;
pub mod transaction;
pub mod ua;
