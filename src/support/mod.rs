//! Small support code every room may use; it imports nothing else of chatops.

pub mod atomic;
pub mod chat_backend;
pub mod dotpath;
pub mod duration;
pub mod limits;
pub mod percent;
pub mod redact;
pub mod safety;
pub mod shell;
pub mod signals;
pub mod stats;
pub mod style;
pub mod suggest;
pub mod time;
pub mod tls;
