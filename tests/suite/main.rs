//! The integration tests, as one binary (one link, one shared PostgreSQL
//! cluster for the tests that do not need their own). Each module is one
//! area; `common` holds the shared sandbox helpers.

mod common;

mod browser;
mod chaos;
mod cli;
mod database_playbook;
mod doctor_sandbox;
mod engine;
mod evidence_pg;
mod exporter;
mod hostile;
mod hostile_server;
mod http_check;
mod knobs;
mod layers;
mod load;
mod load_causes;
mod load_causes_log;
mod load_report;
mod log_and_stability;
mod pg_activity;
mod pg_checks;
mod pg_tls;
mod pg_url;
mod pgbouncer;
mod playbook_errors;
mod pool_calc;
mod port_check;
mod props;
mod rate_limit;
mod redaction;
mod report_snapshots;
mod sandbox_pg;
mod scale;
mod signals;
mod sql_check;
mod watch;
mod why_it_broke;
mod working_tree;
