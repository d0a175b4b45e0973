//! chatops: operations and diagnostics for a chat backend (NestJS + Prisma +
//! PostgreSQL, or anything that speaks the same protocols) before a load test
//! or during an incident.
//!
//! Three kinds of room, and every arrow points down (a test in
//! `tests/suite/layers.rs` fails on a cycle or an upward import):
//!
//! - **commands**: one file per subcommand, glue only; no command imports another.
//! - **domain**: [`load`], [`watch`], [`report`], [`checks`], [`engine`],
//!   [`playbook`], [`diagnose`], [`poolcalc`] (in that order: each may use
//!   the ones after it).
//! - **infrastructure**: [`pg`], [`probe`] (processes, sockets, HTTP), [`sandbox`].
//! - **support**: [`support`] (durations, dotted paths, suggestions,
//!   redaction, safety, signals, time, TLS settings, what chatops knows about
//!   the target backend).
//!
//! The flow goes one way: a YAML [`playbook`] is loaded into typed specs, the
//! [`engine`] runs the [`checks`] in dependency order, [`diagnose`] turns what
//! they observed into root causes and remedies, and a [`report`] prints them.

pub mod commands;

pub mod checks;
pub mod diagnose;
pub mod engine;
pub mod load;
pub mod playbook;
pub mod poolcalc;
pub mod report;
pub mod session;
pub mod watch;

pub mod pg;
pub mod probe;
pub mod sandbox;

pub mod support;
