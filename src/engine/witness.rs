//! The backend's log as the run's witness: which file it is (found once,
//! when the run begins) and where it ended then. Checks that see the
//! backend fail read it through [`Ctx::witness`](super::Ctx): an HTTP
//! check reads what was written while its request ran, the port check the
//! end of the log of a backend that is not running.
//!
//! Which file, in order: the playbook's `backend_log` variable when it is
//! set (not empty); else, for a backend process on this machine (the one
//! listening on `target.base_port`), the file its stdout or stderr go to
//! (`/proc/PID/fd/1` and `2`, as with `nohup … > /tmp/backend.log 2>&1`);
//! else the seed's `/tmp/backend.log`.

use crate::diagnose::witness::Hints;
use crate::probe::log::{self, Tail};
use crate::probe::process;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The log when nothing says otherwise (the seed redirects there).
pub const DEFAULT_LOG: &str = "/tmp/backend.log";

/// The backend's log for this run.
#[derive(Debug, Clone)]
pub struct Witness {
    pub path: PathBuf,
    /// Why this file, in words for the evidence.
    pub why: String,
    /// Where the log ended when the run began (None: unreadable then).
    pub start: Option<Tail>,
    /// The backend's and the database's ports, to tell a refused database
    /// connection from other refusals in the log.
    pub hints: Hints,
}

impl Witness {
    /// `PATH (why)`, for evidence lines and faults.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.path.display(), self.why)
    }
}

/// Where the log came from, before it is described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The playbook's `backend_log`.
    Configured(String),
    /// Where the listening process's output goes: the file, the reason,
    /// the port it listens on.
    Process(PathBuf, String, u16),
    Default,
}

/// The file and why, from what was found (pure).
pub fn choose(configured: Option<&str>, found: Option<(PathBuf, String, u16)>) -> Source {
    match (configured.map(str::trim).filter(|s| !s.is_empty()), found) {
        (Some(c), _) => Source::Configured(c.to_string()),
        (None, Some((p, why, port))) => Source::Process(p, why, port),
        (None, None) => Source::Default,
    }
}

/// The file and its description.
pub fn describe(s: Source) -> (PathBuf, String) {
    match s {
        Source::Configured(p) => (PathBuf::from(p), "the playbook's backend_log".into()),
        Source::Process(p, why, port) => (
            p,
            format!("{why}; that process listens on the backend's port {port}"),
        ),
        Source::Default => (
            PathBuf::from(DEFAULT_LOG),
            "the default: no backend_log was given and no local backend process writes its output to a file".into(),
        ),
    }
}

/// The ports the diagnosis should know about (pure).
pub fn hints(target: &BTreeMap<String, String>) -> Hints {
    let mut h = Hints::default();
    if let Some(p) = target.get("db_port").and_then(|p| p.parse().ok())
        && !h.db_ports.contains(&p)
    {
        h.db_ports.push(p);
    }
    h.backend_port = target.get("base_port").and_then(|p| p.parse().ok());
    h
}

/// Finds the run's witness: reads `/proc` for the listening process and
/// marks where the log ends. Cheap (a few file system calls); called once
/// when the run begins.
pub fn resolve(vars: &BTreeMap<String, String>, target: &BTreeMap<String, String>) -> Witness {
    let hints = hints(target);
    let configured = vars.get("backend_log").map(String::as_str);
    let found = if configured.is_some_and(|c| !c.trim().is_empty()) {
        None
    } else {
        let local = target
            .get("base_host")
            .is_none_or(|h| process::is_local_host(h));
        hints.backend_port.filter(|_| local).and_then(|port| {
            process::listeners(port).into_iter().find_map(|p| {
                log::find_log(p.pid).map(|(path, reason)| (path, reason.describe(), port))
            })
        })
    };
    let (path, why) = describe(choose(configured, found));
    let start = log::mark(&path).ok();
    Witness {
        path,
        why,
        start,
        hints,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_log_then_the_process_s_then_the_default() {
        let found = Some((PathBuf::from("/srv/app/out.log"), "fd 1".to_string(), 3001));
        assert_eq!(
            choose(Some("/var/log/chat.log"), found.clone()),
            Source::Configured("/var/log/chat.log".into())
        );
        // An empty backend_log is not given.
        assert_eq!(
            choose(Some("  "), found.clone()),
            Source::Process("/srv/app/out.log".into(), "fd 1".into(), 3001)
        );
        assert_eq!(choose(None, None), Source::Default);
        let (p, why) = describe(Source::Default);
        assert_eq!(p, PathBuf::from("/tmp/backend.log"));
        assert!(why.contains("default"), "{why}");
        let (p, why) = describe(choose(None, found));
        assert_eq!(p, PathBuf::from("/srv/app/out.log"));
        assert!(why.contains("fd 1") && why.contains("3001"), "{why}");
        let (_, why) = describe(choose(Some("/x.log"), None));
        assert_eq!(why, "the playbook's backend_log");
    }

    #[test]
    fn ports_from_the_target() {
        let t: BTreeMap<String, String> = [("base_port", "3001"), ("db_port", "55432")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let h = hints(&t);
        assert_eq!(h.backend_port, Some(3001));
        assert!(h.db_ports.contains(&55432) && h.db_ports.contains(&5432));
        let h = hints(&BTreeMap::new());
        assert_eq!(h.backend_port, None);
    }

    #[test]
    fn resolving_marks_the_end_of_the_configured_log() {
        let dir = std::env::temp_dir().join(format!("chatops-witness-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.log");
        std::fs::write(&p, "one\ntwo\n").unwrap();
        let vars: BTreeMap<String, String> =
            [("backend_log".to_string(), p.to_string_lossy().into_owned())].into();
        let w = resolve(&vars, &BTreeMap::new());
        assert_eq!(w.path, p);
        assert_eq!(w.start.as_ref().map(|t| t.end), Some(8));
        assert!(w.describe().contains("backend_log"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
