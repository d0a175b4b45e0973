//! Probes of the operating system: processes, their environment and
//! resources, and who owns a listening socket.

pub mod log;
pub mod process;
pub mod threads;
