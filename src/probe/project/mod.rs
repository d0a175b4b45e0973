//! The backend's project directory (its working tree) and what it holds
//! for the working-tree checks: where it is and why ([`locate`]), the
//! Prisma schema and its generated client, the compiled output, the
//! migrations and the `.env` files. Reading only; nothing is written.

pub mod dotenv;
pub mod files;
pub mod layout;
mod lex;
pub mod migrations;
pub mod schema;

use super::process;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The project found, and the backend process when there is one here.
#[derive(Debug, Clone)]
pub struct Located {
    pub dir: PathBuf,
    /// Why this directory: "the working directory of pid N (…)…".
    pub why: String,
    pub process: Option<Running>,
}

/// The backend process whose project this is.
#[derive(Debug, Clone)]
pub struct Running {
    pub pid: u32,
    pub cmdline: String,
    pub started: Option<SystemTime>,
}

/// Why no project could be read.
#[derive(Debug, Clone, PartialEq)]
pub enum NotFound {
    /// The working tree is out of reach (a remote backend, a container, no
    /// process, no permission): the checks are skipped with this reason.
    Unseen(String),
    /// The directory given does not exist: a mistake to report.
    Invalid(String),
}

/// Where to look: a directory given (`--project`, `target.project`), and
/// the backend's host and port (its listening process's working directory).
#[derive(Debug, Clone, Default)]
pub struct Lookup<'a> {
    pub dir: Option<&'a str>,
    pub host: Option<&'a str>,
    pub port: Option<u16>,
}

/// The nearest directory at or above `start` that holds a `package.json`.
pub fn package_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join("package.json").is_file())
        .map(Path::to_path_buf)
}

/// The process listening on `port` here, if any.
fn backend_process(l: &Lookup<'_>) -> Option<Running> {
    if l.host.is_some_and(|h| !process::is_local_host(h)) {
        return None;
    }
    let p = process::listeners(l.port?).into_iter().next()?;
    Some(Running {
        pid: p.pid,
        started: process::start_time(p.pid),
        cmdline: p.cmdline,
    })
}

/// Finds the project: the directory given, else the working directory
/// of the process listening on the backend's port (`/proc/PID/cwd`),
/// walked up to the nearest `package.json`.
pub fn locate(l: &Lookup<'_>) -> Result<Located, NotFound> {
    if let Some(d) = l.dir.map(str::trim).filter(|d| !d.is_empty()) {
        let given = PathBuf::from(d);
        let Ok(abs) = std::fs::canonicalize(&given) else {
            return Err(NotFound::Invalid(format!(
                "the project directory {d} (given with --project or target.project) does not exist"
            )));
        };
        let (dir, how) = match package_root(&abs) {
            Some(root) if root == abs => (root, String::new()),
            Some(root) => (
                root,
                format!(", walked up from {} to its package.json", abs.display()),
            ),
            None => (abs, ", which has no package.json".to_string()),
        };
        return Ok(Located {
            why: format!(
                "{} was given (--project or target.project){how}",
                dir.display()
            ),
            dir,
            process: backend_process(l),
        });
    }
    if let Some(h) = l.host.filter(|h| !process::is_local_host(h)) {
        return Err(NotFound::Unseen(format!(
            "the backend runs on {h}, not on this machine: its working tree cannot be read from here (run chatops there, or give --project DIR for a checkout)"
        )));
    }
    let Some(port) = l.port else {
        return Err(NotFound::Unseen(
            "no project directory given and no backend port to find its process by (give --project DIR)".into(),
        ));
    };
    let Some(p) = process::listeners(port).into_iter().next() else {
        return Err(NotFound::Unseen(format!(
            "no process on this machine listens on port {port}, so its working directory is unknown (give --project DIR)"
        )));
    };
    let cwd = match std::fs::read_link(format!("/proc/{}/cwd", p.pid)) {
        Ok(c) => c,
        Err(e) => {
            return Err(NotFound::Unseen(format!(
                "cannot read the working directory of pid {} ({}): /proc/{}/cwd: {e} (run chatops as the backend's user or root, or give --project DIR)",
                p.pid, p.cmdline, p.pid
            )));
        }
    };
    if !cwd.is_dir() {
        return Err(NotFound::Unseen(format!(
            "the working directory of pid {} ({}) is {}, which is not visible from here (another mount namespace: a container?); give --project DIR",
            p.pid,
            p.cmdline,
            cwd.display()
        )));
    }
    let Some(dir) = package_root(&cwd) else {
        return Err(NotFound::Unseen(format!(
            "the working directory of pid {} ({}), {}, has no package.json in it or above: not a Node project (give --project DIR)",
            p.pid,
            p.cmdline,
            cwd.display()
        )));
    };
    let walked = if dir == cwd {
        String::new()
    } else {
        format!(", walked up from {} to its package.json", cwd.display())
    };
    Ok(Located {
        why: format!(
            "the working directory of pid {} ({}), the process listening on port {port} (/proc/{}/cwd){walked}",
            p.pid, p.cmdline, p.pid
        ),
        dir,
        process: Some(Running {
            pid: p.pid,
            started: process::start_time(p.pid),
            cmdline: p.cmdline,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_directory_is_walked_up_to_its_package_json() {
        let d = std::env::temp_dir().join(format!("chatops-locate-{}", std::process::id()));
        std::fs::create_dir_all(d.join("src/chat")).expect("mkdir");
        std::fs::write(d.join("package.json"), "{}").expect("w");
        let sub = d.join("src/chat");
        let l = locate(&Lookup {
            dir: sub.to_str(),
            ..Lookup::default()
        })
        .expect("found");
        assert_eq!(l.dir, std::fs::canonicalize(&d).expect("canon"));
        assert!(l.why.contains("walked up"), "{}", l.why);
        assert!(l.process.is_none());
        let missing = locate(&Lookup {
            dir: Some("/no/such/dir"),
            ..Lookup::default()
        });
        assert!(matches!(missing, Err(NotFound::Invalid(m)) if m.contains("/no/such/dir")));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_remote_backend_or_no_port_is_unseen() {
        let r = locate(&Lookup {
            host: Some("10.1.2.3"),
            port: Some(3001),
            ..Lookup::default()
        });
        assert!(matches!(r, Err(NotFound::Unseen(m)) if m.contains("10.1.2.3")));
        let r = locate(&Lookup::default());
        assert!(matches!(r, Err(NotFound::Unseen(m)) if m.contains("--project")));
    }
}
