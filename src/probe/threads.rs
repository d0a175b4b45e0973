//! CPU per thread of a process, its open files, and the machine's CPU, read
//! from /proc. A single-threaded runtime (Node's event loop) is saturated at
//! about 100% of one core even when the machine has idle cores, so the
//! busiest thread matters as much as the process's total.

use std::collections::BTreeMap;

/// CPU time a thread has used so far, in clock ticks (utime + stime).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadTicks {
    pub tid: u32,
    /// The thread's name (`comm`: `node`, `libuv-worker`, `V8 Worker`…).
    pub name: String,
    pub ticks: u64,
}

/// A thread's CPU over an interval, in percent of one core.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThreadCpu {
    pub tid: u32,
    pub name: String,
    pub pct: f64,
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_per_second() -> Option<u64> {
    // SAFETY: sysconf takes an integer name and touches no memory of ours.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(v).ok().filter(|v| *v > 0)
}

/// `comm` and utime + stime from one `/proc/…/stat` line. The name may hold
/// spaces and parentheses: it ends at the last `)`.
pub fn parse_stat(line: &str) -> Option<(String, u64)> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let name = line.get(open + 1..close)?.to_string();
    let f: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // f[0] is field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// Every thread of `pid` with its CPU ticks (None when the process is gone).
pub fn thread_ticks(pid: u32) -> Option<Vec<ThreadTicks>> {
    let dir = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A thread may end between the listing and the read.
        if let Ok(line) = std::fs::read_to_string(e.path().join("stat"))
            && let Some((name, ticks)) = parse_stat(&line)
        {
            out.push(ThreadTicks { tid, name, ticks });
        }
    }
    out.sort_by_key(|t| t.tid);
    Some(out)
}

/// Ticks of a whole process (all its threads, from /proc/PID/stat).
pub fn process_ticks(pid: u32) -> Option<u64> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&line).map(|(_, t)| t)
}

/// Per-thread CPU between two readings `secs` apart, busiest first. A thread
/// that started in between counts from zero; one that ended is left out.
pub fn thread_cpu(
    before: &[ThreadTicks],
    after: &[ThreadTicks],
    secs: f64,
    hz: u64,
) -> Vec<ThreadCpu> {
    if secs <= 0.0 || hz == 0 {
        return Vec::new();
    }
    let prev: BTreeMap<u32, u64> = before.iter().map(|t| (t.tid, t.ticks)).collect();
    let mut out: Vec<ThreadCpu> = after
        .iter()
        .map(|t| {
            let d = t
                .ticks
                .saturating_sub(prev.get(&t.tid).copied().unwrap_or(0));
            ThreadCpu {
                tid: t.tid,
                name: t.name.clone(),
                pct: d as f64 / hz as f64 / secs * 100.0,
            }
        })
        .collect();
    out.sort_by(|a, b| b.pct.total_cmp(&a.pct).then(a.tid.cmp(&b.tid)));
    out
}

/// Open file descriptors of a process (sockets, files, pipes).
pub fn open_files(pid: u32) -> Option<u32> {
    let n = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count();
    u32::try_from(n).ok()
}

/// The machine's CPU counters: busy and total ticks over every core since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MachineTicks {
    pub busy: u64,
    pub total: u64,
}

/// The `cpu` line of /proc/stat: user nice system idle iowait irq softirq
/// steal (guest time is already inside user). Idle and iowait are not busy.
pub fn parse_proc_stat(text: &str) -> Option<MachineTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: total - idle,
        total,
    })
}

pub fn machine_ticks() -> Option<MachineTicks> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The machine's busy share between two readings, in percent of all cores.
pub fn machine_busy_pct(before: MachineTicks, after: MachineTicks) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    (total > 0).then(|| busy as f64 / total as f64 * 100.0)
}

/// Cores this machine offers.
pub fn cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_names() {
        let l = "4242 (node) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 30 0 0 20 0 11 0 100 0 0";
        assert_eq!(parse_stat(l), Some(("node".into(), 280)));
        let l = "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 1 0 0";
        assert_eq!(parse_stat(l), Some(("a (b) c".into(), 11)));
        assert_eq!(parse_stat("7 (x) R 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn thread_cpu_is_a_delta_busiest_first() {
        let t = |tid, name: &str, ticks| ThreadTicks {
            tid,
            name: name.into(),
            ticks,
        };
        let before = [t(1, "node", 100), t(2, "libuv-worker", 10), t(3, "gone", 5)];
        let after = [t(1, "node", 198), t(2, "libuv-worker", 12), t(4, "new", 3)];
        let c = thread_cpu(&before, &after, 1.0, 100);
        assert_eq!(c[0].name, "node");
        assert!((c[0].pct - 98.0).abs() < 1e-9, "{c:?}");
        assert_eq!(c[1].name, "new");
        assert!((c[1].pct - 3.0).abs() < 1e-9);
        assert!((c[2].pct - 2.0).abs() < 1e-9);
        assert_eq!(c.len(), 3);
        assert!(thread_cpu(&before, &after, 0.0, 100).is_empty());
    }

    #[test]
    fn machine_busy_excludes_idle_and_iowait() {
        let a = parse_proc_stat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n").expect("a");
        assert_eq!(
            a,
            MachineTicks {
                busy: 150,
                total: 1000
            }
        );
        let b = parse_proc_stat("cpu  190 0 60 800 50 0 0 0 0 0\n").expect("b");
        assert_eq!(machine_busy_pct(a, b), Some(100.0));
        assert_eq!(machine_busy_pct(b, a), None);
        assert_eq!(parse_proc_stat("intr 1 2"), None);
    }

    #[test]
    fn this_process_has_threads_and_files() {
        let me = std::process::id();
        let threads = thread_ticks(me).expect("our own threads");
        assert!(threads.iter().any(|t| t.tid == me), "{threads:?}");
        assert!(open_files(me).is_some_and(|n| n >= 3));
        assert!(process_ticks(me).is_some());
        assert!(ticks_per_second().is_some());
        assert!(machine_ticks().is_some_and(|m| m.total > 0));
        assert_eq!(thread_ticks(u32::MAX), None);
    }
}
