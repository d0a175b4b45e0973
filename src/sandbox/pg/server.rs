//! Running the server binaries for a cluster: `initdb`, the first start on
//! a free port (retried when the port is lost), `pg_ctl` as the postgres user
//! when this process is root, and the server log in errors.

use super::cleanup::registry;
use super::setup::write_private_file;
use super::util::{file_len, quote_literal, random_port, read_from, tail_of_file};
use super::{
    HOST, INITDB_TIMEOUT, LOG_TAIL_LINES, PG_CTL_TIMEOUT, PG_CTL_WAIT_SECS, PORT_CANDIDATES,
    PORT_MAX, PORT_MIN, PWFILE, PgCluster, PgError, PgOptions, START_ATTEMPTS, SUPERUSER,
};
use std::ffi::OsString;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

impl PgCluster {
    pub(super) fn ensure_alive(&self) -> Result<(), PgError> {
        if self.inner.torn_down.load(Ordering::SeqCst) {
            Err(PgError::new(format!(
                "the cluster in {} was already cleaned up",
                self.inner.root.display()
            )))
        } else {
            Ok(())
        }
    }

    pub(super) async fn initdb(&self) -> Result<(), PgError> {
        let pwfile = self.inner.root.join(PWFILE);
        let written =
            write_private_file(&pwfile, &format!("{}\n", self.password), self.inner.owner);
        written.map_err(|e| PgError::new(format!("writing {}: {e}", pwfile.display())))?;
        let mut pwarg = OsString::from("--pwfile=");
        pwarg.push(&pwfile);
        let result = self
            .run_tool(
                "initdb",
                &["-D".into(), self.inner.data.clone().into(), pwarg],
                &[
                    "-U",
                    SUPERUSER,
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                INITDB_TIMEOUT,
            )
            .await;
        let _ = fs::remove_file(&pwfile);
        result.map(|_| ())
    }

    pub(super) async fn first_start(&self, opts: &PgOptions) -> Result<(), PgError> {
        let conf_path = self.inner.data.join("postgresql.conf");
        let base = fs::read_to_string(&conf_path)
            .map_err(|e| PgError::new(format!("reading {}: {e}", conf_path.display())))?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = self.reserve_port()?;
            let conf = format!("{base}\n{}", self.settings_block(port, opts));
            fs::write(&conf_path, conf)
                .map_err(|e| PgError::new(format!("writing {}: {e}", conf_path.display())))?;
            let offset = file_len(&self.inner.log_path());
            match self.pg_ctl_start().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let e = self.with_log_tail(e, offset);
                    if !self.log_says_port_taken(offset) || self.inner.pidfile().exists() {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| PgError::new("PostgreSQL did not start")))
    }

    pub(super) async fn pg_ctl_start(&self) -> Result<(), PgError> {
        let wait = PG_CTL_WAIT_SECS.to_string();
        self.run_tool(
            "pg_ctl",
            &[
                "-D".into(),
                self.inner.data.clone().into(),
                "-l".into(),
                self.inner.log_path().into(),
            ],
            &["-w", "-t", &wait, "-s", "start"],
            PG_CTL_TIMEOUT,
        )
        .await
        .map(|_| ())
        .map_err(|mut e| {
            e.message = format!(
                "PostgreSQL failed to start on {HOST}:{}: {}",
                self.port(),
                e.message
            );
            e
        })
    }

    pub(super) fn settings_block(&self, port: u16, opts: &PgOptions) -> String {
        let mut block = String::from("\n# ---- chatops sandbox settings ----\n");
        let mut set = |name: &str, value: String| {
            block.push_str(&format!("{name} = {value}\n"));
        };
        set("listen_addresses", quote_literal(HOST));
        set("port", port.to_string());
        set(
            "unix_socket_directories",
            quote_literal(&self.inner.root.to_string_lossy()),
        );
        set("max_connections", opts.max_connections.to_string());
        set("fsync", "off".to_string());
        let preload_set = opts
            .extra_settings
            .iter()
            .any(|(n, _)| n == "shared_preload_libraries");
        if opts.stat_statements && !preload_set {
            set(
                "shared_preload_libraries",
                quote_literal("pg_stat_statements"),
            );
        }
        for (name, value) in &opts.extra_settings {
            set(name, quote_literal(value));
        }
        block
    }

    /// Picks a free port in 20000..32000 that no other cluster of this
    /// process uses, and records it as this cluster's port.
    pub(super) fn reserve_port(&self) -> Result<u16, PgError> {
        let reg = registry();
        let taken: Vec<u16> = reg
            .iter()
            .filter(|other| other.id != self.inner.id)
            .map(|other| other.port.load(Ordering::SeqCst))
            .collect();
        let previous = self.port();
        for i in 0..PORT_CANDIDATES {
            let port = random_port(u64::from(i));
            if port == previous || taken.contains(&port) {
                continue;
            }
            if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
                self.inner.port.store(port, Ordering::SeqCst);
                return Ok(port);
            }
        }
        Err(PgError::new(format!(
            "no free TCP port found on {HOST} in {PORT_MIN}..{PORT_MAX}"
        )))
    }

    pub(super) fn log_says_port_taken(&self, offset: u64) -> bool {
        let log = read_from(&self.inner.log_path(), offset);
        log.contains("Address already in use")
            || log.contains("could not create any TCP/IP sockets")
    }

    pub(super) fn with_log_tail(&self, mut e: PgError, offset: u64) -> PgError {
        let path = self.inner.log_path();
        let tail = tail_of_file(&path, offset, LOG_TAIL_LINES);
        if !tail.trim().is_empty() {
            e.message = format!(
                "{}\n--- last lines of the server log ({}) ---\n{}",
                e.message,
                path.display(),
                tail.trim_end()
            );
        }
        e
    }

    /// Runs one of the server binaries (as the postgres user when we are
    /// root), bounded by `timeout`; returns its output, or an error with it.
    pub(super) async fn run_tool(
        &self,
        tool: &str,
        os_args: &[OsString],
        args: &[&str],
        timeout: Duration,
    ) -> Result<String, PgError> {
        let program = self.inner.bindir.join(tool);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(os_args)
            .args(args)
            .current_dir(&self.inner.root)
            .env_remove("PGDATA")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.inner.owner {
            cmd.uid(uid).gid(gid);
        }
        let output = match tokio::time::timeout(timeout, cmd.output()).await {
            Err(_) => {
                return Err(PgError::new(format!(
                    "{tool} did not finish within {}s",
                    timeout.as_secs()
                )));
            }
            Ok(Err(e)) => {
                return Err(PgError::new(format!(
                    "could not run {}: {e}",
                    program.display()
                )));
            }
            Ok(Ok(output)) => output,
        };
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        if output.status.success() {
            Ok(text)
        } else {
            let detail = text.trim();
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(": {detail}")
            };
            Err(PgError::new(format!(
                "{tool} failed ({}){detail}",
                output.status
            )))
        }
    }
}
