//! The backend's log during a load: which file (found once, when the run
//! begins), marked at each stage's start and read after it (bounded: the
//! first and the last part of what the stage wrote), then classified with
//! the stage's error bodies into the stage's witness.
//!
//! Which file, in order: `--backend-log PATH`; else the file the backend
//! process's stdout or stderr go to (`/proc/PID/fd/1` and `2`); else none
//! (the error bodies alone witness).

use crate::diagnose::load::{ErrorBody, StageLog, WitnessEvidence, witness_evidence};
use crate::diagnose::witness::Hints;
use crate::probe::log::{self, Tail};
use std::path::PathBuf;

/// Bytes read from the start of what a stage wrote (the first failures),
/// and from its end (a cause that appeared mid-stage).
pub const HEAD_BYTES: u64 = 256 * 1024;
pub const TAIL_BYTES: u64 = 256 * 1024;

/// The backend's log for the run.
#[derive(Debug, Clone)]
pub struct LoadLog {
    pub path: PathBuf,
    /// Why this file, in words for the evidence.
    pub why: String,
}

/// What the witness knows before the run: the log (if any) and the ports.
#[derive(Debug, Clone)]
pub struct Witness {
    pub log: Option<LoadLog>,
    pub hints: Hints,
}

/// Where the log ended when a stage began.
#[derive(Debug, Clone)]
pub struct Mark(Option<Tail>);

/// The file and why, from what was given and found (pure).
pub fn choose(
    configured: Option<&std::path::Path>,
    found: Option<(PathBuf, String)>,
) -> Option<LoadLog> {
    match (configured, found) {
        (Some(p), _) => Some(LoadLog {
            path: p.to_path_buf(),
            why: "--backend-log".into(),
        }),
        (None, Some((path, why))) => Some(LoadLog { path, why }),
        (None, None) => None,
    }
}

/// The ports the classification should know: the database's (from
/// chatops's own database URL) and the backend's.
pub fn hints(base_url: &str, database_url: Option<&str>) -> Hints {
    let mut h = Hints::default();
    if let Some(p) = database_url
        .and_then(|u| crate::pg::DbUrl::parse(u).ok())
        .map(|u| u.port)
        && !h.db_ports.contains(&p)
    {
        h.db_ports.push(p);
    }
    h.backend_port = url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.port_or_known_default());
    h
}

impl Witness {
    /// Finds the log: the flag's, else the backend process's output file.
    pub fn resolve(
        configured: Option<&std::path::Path>,
        pid: Option<u32>,
        base_url: &str,
        database_url: Option<&str>,
    ) -> Witness {
        let found = if configured.is_some() {
            None
        } else {
            pid.and_then(log::find_log).map(|(p, r)| (p, r.describe()))
        };
        Witness {
            log: choose(configured, found),
            hints: hints(base_url, database_url),
        }
    }

    /// Marks where the log ends now (a stage begins).
    pub fn mark(&self) -> Mark {
        Mark(self.log.as_ref().and_then(|l| log::mark(&l.path).ok()))
    }

    /// What the log gained since `mark`, within the budget, described.
    pub fn read(&self, mark: &Mark) -> Option<StageLog> {
        let l = self.log.as_ref()?;
        let what = format!("{} ({})", l.path.display(), l.why);
        let Some(m) = &mark.0 else {
            return Some(StageLog {
                describe: format!("{what}: unreadable when the stage began"),
                lines: Vec::new(),
            });
        };
        let head = match log::read_after(m, HEAD_BYTES) {
            Ok(h) => h,
            Err(e) => {
                return Some(StageLog {
                    describe: format!("{what}: {e}"),
                    lines: Vec::new(),
                });
            }
        };
        let mut lines = head.lines();
        let mut read = head.end - head.start;
        let mut skipped = 0;
        if head.cut {
            // The stage wrote more than the budget: its end as well.
            let rest = log::tail(&l.path, TAIL_BYTES)
                .ok()
                .filter(|t| t.start >= head.end && t.file == head.file);
            if let Some(t) = rest {
                skipped = t.start - head.end;
                read += t.end - t.start;
                lines.extend(t.lines());
            }
        }
        let describe = if skipped > 0 {
            format!(
                "{what}: the {read} bytes written during the stage, less {skipped} in the middle"
            )
        } else {
            format!("{what}: the {read} bytes written during the stage")
        };
        Some(StageLog { describe, lines })
    }

    /// The stage's witness from its log and its error bodies.
    pub fn stage(&self, mark: &Mark, bodies: &[ErrorBody]) -> Option<WitnessEvidence> {
        let log = self.read(mark);
        witness_evidence(log.as_ref(), bodies, &self.hints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_flag_then_the_process_s_file_then_none() {
        let found = Some((PathBuf::from("/srv/out.log"), "fd 1".to_string()));
        let l = choose(Some(std::path::Path::new("/x.log")), found.clone()).expect("log");
        assert_eq!(
            (l.path, l.why.as_str()),
            (PathBuf::from("/x.log"), "--backend-log")
        );
        let l = choose(None, found).expect("log");
        assert_eq!(l.path, PathBuf::from("/srv/out.log"));
        assert!(choose(None, None).is_none());
        let h = hints(
            "http://127.0.0.1:3001",
            Some("postgres://u@127.0.0.1:55432/chat"),
        );
        assert_eq!(h.backend_port, Some(3001));
        assert!(h.db_ports.contains(&55432) && h.db_ports.contains(&5432));
    }

    #[test]
    fn a_stage_reads_what_was_written_after_its_mark() {
        let dir = std::env::temp_dir().join(format!("chatops-load-witness-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("b.log");
        std::fs::write(
            &p,
            "prisma:error Can't reach database server at `127.0.0.1:5432`\n",
        )
        .expect("write");
        let w = Witness::resolve(Some(&p), None, "http://127.0.0.1:3001", None);
        let m = w.mark();
        // Before the mark: not this stage's.
        assert_eq!(w.stage(&m, &[]), None);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .expect("open");
        writeln!(
            f,
            "prisma:error The column `messages.messageType` does not exist in the current database."
        )
        .expect("append");
        let got = w.stage(&m, &[]).expect("a witness");
        assert_eq!(got.cause, crate::diagnose::cause::Cause::SchemaDrift);
        let log = got.log.expect("described");
        assert!(
            log.contains("(--backend-log): the 87 bytes written during the stage"),
            "{log}"
        );
        // A stage that wrote more than the budget: its first and last lines.
        let m = w.mark();
        let filler = format!("{}\n", "x".repeat(1000));
        for _ in 0..(HEAD_BYTES as usize / 1001 + 300) {
            f.write_all(filler.as_bytes()).expect("fill");
        }
        writeln!(f, "sorry, too many clients already").expect("append");
        let s = w.read(&m).expect("read");
        assert!(s.describe.contains("in the middle"), "{}", s.describe);
        assert!(
            s.lines
                .last()
                .is_some_and(|l| l.raw.contains("too many clients"))
        );
        // No log: nothing read, the bodies alone.
        let none = Witness::resolve(None, None, "http://127.0.0.1:3001", None);
        assert!(none.read(&none.mark()).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
