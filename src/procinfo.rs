//! What the operating system knows about processes: who listens on a port,
//! a process's command line and its environment (Linux `/proc`).

use std::collections::HashSet;
use std::io;

/// A process, for evidence.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub cmdline: String,
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.cmdline)
    }
}

/// Socket inodes listening on a TCP port (IPv4 and IPv6).
fn listening_inodes(port: u16) -> HashSet<u64> {
    let mut out = HashSet::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some(p) = f[1]
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok())
            else {
                continue;
            };
            if p == port
                && let Ok(inode) = f[9].parse::<u64>()
            {
                out.insert(inode);
            }
        }
    }
    out
}

/// Whether anything on this machine listens on the TCP port (any address).
pub fn is_listening_locally(port: u16) -> Option<bool> {
    if !std::path::Path::new("/proc/net/tcp").exists() {
        return None;
    }
    Some(!listening_inodes(port).is_empty())
}

/// Processes listening on a local TCP port.
pub fn listeners(port: u16) -> Vec<Proc> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let owns = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|l| {
                    l.to_str()
                        .and_then(|s| s.strip_prefix("socket:["))
                        .and_then(|s| s.strip_suffix(']'))
                        .and_then(|s| s.parse::<u64>().ok())
                })
                .is_some_and(|i| inodes.contains(&i))
        });
        if owns {
            out.push(Proc {
                pid,
                cmdline: cmdline(pid),
            });
        }
    }
    out
}

pub fn cmdline(pid: u32) -> String {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(b) if !b.is_empty() => {
            let s: Vec<String> = b
                .split(|c| *c == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let s = s.join(" ");
            if s.chars().count() > 160 {
                format!("{}…", s.chars().take(160).collect::<String>())
            } else {
                s
            }
        }
        _ => std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// A process's environment, from /proc/PID/environ.
pub fn environ(pid: u32) -> io::Result<Vec<(String, String)>> {
    let b = std::fs::read(format!("/proc/{pid}/environ"))?;
    Ok(b.split(|c| *c == 0)
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let s = String::from_utf8_lossy(p);
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect())
}

/// Processes whose command line contains `pattern` (not this process).
pub fn find_by_name(pattern: &str) -> Vec<Proc> {
    let me = std::process::id();
    let Ok(mut sys) = sysinfo::System::new() else {
        return Vec::new();
    };
    sys.refresh_processes(sysinfo::ProcessesToUpdate::All, true);
    let mut out: Vec<Proc> = sys
        .processes()
        .iter()
        .filter(|(pid, _)| pid.as_u32() != me)
        .filter(|(_, p)| {
            let name = p.name().to_string_lossy();
            let cmd: Vec<String> = p
                .cmd()
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            name.contains(pattern) || cmd.join(" ").contains(pattern)
        })
        .map(|(pid, _)| Proc {
            pid: pid.as_u32(),
            cmdline: cmdline(pid.as_u32()),
        })
        .collect();
    out.sort_by_key(|p| p.pid);
    out
}

/// Whether a host name means this machine.
pub fn is_local_host(host: &str) -> bool {
    let h = host.trim_matches(['[', ']']);
    h == "localhost"
        || h.ends_with(".localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// Resident memory of a process, in bytes (None when it is gone).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let mut sys = sysinfo::System::new().ok()?;
    let p = sysinfo::Pid::from_u32(pid);
    sys.refresh_processes_specifics(
        sysinfo::ProcessesToUpdate::Some(&[p]),
        true,
        sysinfo::ProcessRefreshKind::nothing().with_memory(),
    );
    sys.process(p).map(|x| x.memory())
}

/// Whether a process exists and has not exited (a zombie waiting for its
/// parent to reap it counts as exited).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // pid (comm) STATE …; comm may contain spaces and parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}
