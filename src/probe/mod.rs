//! Probes of the operating system and of HTTP: processes, their environment
//! and resources, who owns a listening socket, and HTTP requests.

pub mod health;
pub mod http;
pub mod log;
pub mod process;
pub mod project;
pub mod threads;
