//! `chatops load`: a progressive load test that finds the breaking point and
//! says why. Stages run one after another (a cooldown between them) and stop
//! at the first that misses its criteria; while each runs, pg_stat_activity
//! and the backend's memory are sampled once a second, so the breaking point
//! comes with a diagnosis (pool saturation, rate limiting, a crash, memory
//! growth) instead of only a latency figure.
//!
//! Measuring is kept apart from printing. Imports between these files point
//! one way (no cycles):
//! - [`runner`] runs the plan's stages with [`closed`] or [`open`] tasks,
//!   which share a [`shared::Shared`] (the compiled mix and the [`target`]),
//!   send through [`wire`] (HTTP/1.1 on the socket) and count into [`stats`];
//! - [`template`] compiles the mix (its strings in the [`placeholder`]
//!   language) and renders requests to bytes; [`wire`]
//!   sends those bytes and knows only [`outcome`] (how an answer is
//!   classified), which both of them and [`stats`] read;
//! - [`monitor`] samples the backend and PostgreSQL once a second;
//!   [`breaking`] judges each stage and assembles the breaking point;
//! - [`persecond`] collects each second's counts by error class and its
//!   latency histogram from the tasks' [`stats`];
//! - [`result`] holds what a run produced, which [`report`], [`html`]
//!   (report.html) and the command print; [`compare`] judges one run's
//!   summary against another's; [`k6`] exports the [`plan`] as a k6 script.

pub mod bouncer;
pub mod breaking;
pub mod closed;
pub mod compare;
pub mod evidence;
pub mod export;
pub mod html;
pub mod k6;
pub mod monitor;
pub mod open;
pub mod outcome;
pub mod persecond;
pub mod placeholder;
pub mod plan;
pub mod report;
pub mod result;
pub mod runner;
pub mod sampler;
pub mod shared;
pub mod stage_db;
pub mod stats;
pub mod target;
pub mod template;
pub mod wire;
pub mod witness;

pub use result::{BreakingPoint, Generator, RunResult, StageResult, StageStatus};
pub use runner::{Options, run};
