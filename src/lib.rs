//! chatops: operations and diagnostics for a chat backend (NestJS + Prisma +
//! PostgreSQL, or anything that speaks the same protocols) before a load test
//! or during an incident.
//!
//! The flow goes one way: a YAML [`playbook`] is loaded into typed specs, the
//! [`engine`] runs the [`checks`] in dependency order, [`diagnose`] turns what
//! they observed into root causes and remedies, and a [`report`] prints them.

pub mod app;
pub mod checks;
pub mod cli;
pub mod demo;
pub mod diagnose;
pub mod duration;
pub mod embedded;
pub mod engine;
pub mod exit;
pub mod jsonpath;
pub mod load;
pub mod pg;
pub mod playbook;
pub mod poolcalc;
pub mod poolcalc_cmd;
pub mod procinfo;
pub mod redact;
pub mod report;
pub mod safety;
pub mod sandbox;
pub mod tls;
pub mod watch;
