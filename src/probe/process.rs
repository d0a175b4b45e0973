//! What the operating system knows about processes: who listens on a port,
//! a process's command line and its environment, whether it is alive, its
//! memory and CPU time (Linux `/proc`).

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

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

/// Socket inodes listening on a TCP port (IPv4 and IPv6): from the
/// kernel's sock_diag netlink interface when it answers, else from
/// /proc/net/tcp.
fn listening_inodes(port: u16) -> HashSet<u64> {
    listening_inodes_with(port, set_recv_timeout)
}

/// How long the kernel may take to answer a sock_diag dump before we read
/// /proc instead.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(1);

/// `listening_inodes`, with the receive-timeout setter given (tests force
/// it to fail).
fn listening_inodes_with(port: u16, set_timeout: SetTimeout) -> HashSet<u64> {
    match listening_inodes_netlink(port, set_timeout) {
        Ok(found) => found,
        Err(_) => listening_inodes_proc(port),
    }
}

/// Sets a socket's receive timeout (SO_RCVTIMEO).
type SetTimeout = fn(BorrowedFd<'_>, Duration) -> io::Result<()>;

/// SO_RCVTIMEO on `fd`: a `recv` that waits longer fails with EAGAIN.
fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs().try_into().unwrap_or(libc::time_t::MAX),
        tv_usec: timeout.subsec_micros().into(),
    };
    // SAFETY: setsockopt(2) with a pointer to a live timeval and its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Listening TCP sockets on `port` through NETLINK_SOCK_DIAG, as `ss` asks:
/// a dump of the LISTEN state only walks the kernel's listening table,
/// where reading /proc/net/tcp walks every bucket of the established hash
/// (262,144 on this machine: 2.5 ms per tcp+tcp6 read, and far more on a
/// busy host), once per check that looks for a port's owner.
fn listening_inodes_netlink(port: u16, set_timeout: SetTimeout) -> io::Result<HashSet<u64>> {
    const NETLINK_SOCK_DIAG: i32 = 4;
    // SAFETY: socket(2) with constant arguments; the result is checked and
    // then owned by `sock`, which closes it.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // Nothing may hang: a kernel that does not answer in time sends us to
    // /proc, and so does a timeout that cannot be set.
    set_timeout(sock.as_fd(), NETLINK_TIMEOUT)?;
    dump_listening(sock.as_fd(), port)
}

/// Sends the LISTEN-state dump requests (IPv4, then IPv6) on a sock_diag
/// socket and collects the inodes of sockets bound to `port`.
fn dump_listening(sock: BorrowedFd<'_>, port: u16) -> io::Result<HashSet<u64>> {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 0x1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    const TCP_LISTEN: u32 = 10;
    const HDR: usize = 16;
    let fd = sock.as_raw_fd();
    let mut out = HashSet::new();
    let mut buf = vec![0u8; 32 * 1024];
    for (seq, family) in [(1u32, libc::AF_INET), (2, libc::AF_INET6)] {
        // nlmsghdr, then inet_diag_req_v2: family, protocol, ext, pad,
        // states, and a zero inet_diag_sockid (48 bytes).
        let mut req = Vec::with_capacity(HDR + 56);
        req.extend_from_slice(&((HDR + 56) as u32).to_ne_bytes());
        req.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&seq.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&[family as u8, libc::IPPROTO_TCP as u8, 0, 0]);
        req.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
        req.extend_from_slice(&[0u8; 48]);
        // SAFETY: send(2) of a live buffer with its length.
        let n = unsafe { libc::send(fd, req.as_ptr().cast(), req.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        'dump: loop {
            // SAFETY: recv(2) into a live buffer of the given length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let data = &buf[..n as usize];
            if data.is_empty() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let mut at = 0;
            while at + HDR <= data.len() {
                let word = |i: usize| [data[i], data[i + 1], data[i + 2], data[i + 3]];
                let len = u32::from_ne_bytes(word(at)) as usize;
                let ty = u16::from_ne_bytes([data[at + 4], data[at + 5]]);
                if len < HDR || at + len > data.len() {
                    return Err(io::ErrorKind::InvalidData.into());
                }
                match ty {
                    NLMSG_DONE => break 'dump,
                    NLMSG_ERROR => {
                        if len < HDR + 4 {
                            return Err(io::ErrorKind::InvalidData.into());
                        }
                        let errno = i32::from_ne_bytes(word(at + HDR));
                        // No IPv6 in this kernel: nothing listens there.
                        if family == libc::AF_INET6 {
                            break 'dump;
                        }
                        return Err(io::Error::from_raw_os_error(-errno));
                    }
                    SOCK_DIAG_BY_FAMILY if len >= HDR + 72 => {
                        // inet_diag_msg: 4 bytes, then the socket id whose
                        // first field is the source port (big-endian);
                        // the inode is the last field, at offset 68.
                        let m = &data[at + HDR..at + len];
                        let sport = u16::from_be_bytes([m[4], m[5]]);
                        if sport == port {
                            out.insert(u64::from(u32::from_ne_bytes([m[68], m[69], m[70], m[71]])));
                        }
                    }
                    _ => {}
                }
                at += (len + 3) & !3;
            }
        }
    }
    Ok(out)
}

/// The same from /proc/net/tcp and tcp6 (where netlink is not allowed).
fn listening_inodes_proc(port: u16) -> HashSet<u64> {
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

/// Whether a host name means this machine: a loopback name or address, or the unspecified address (`0.0.0.0`,
/// `::`) a server listens on; no lookup. (Traffic safety uses
/// `support::safety::is_loopback_host`, which also resolves names.)
pub fn is_local_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    crate::support::safety::loopback_by_name(h) == Some(true)
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
}

/// The pid of the local process listening on `url`'s port (the backend
/// behind a base or health URL); None for another machine's URL.
pub fn local_listener(url: &str) -> Option<u32> {
    let u = url::Url::parse(url).ok()?;
    if !is_local_host(u.host_str()?) {
        return None;
    }
    listeners(u.port_or_known_default()?).first().map(|p| p.pid)
}

/// A `sysconf(3)` value, None when the system has no answer.
fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf takes an integer name and touches no memory of ours.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|v| *v > 0)
}

/// The fields of /proc/PID/stat after `pid (comm)`, the state first. The
/// command name may hold spaces and parentheses, so the split is at the
/// last `)`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Whether a process exists and has not exited. A zombie (exited, waiting
/// for its parent to reap it) counts as exited, as does a process whose
/// state cannot be read.
pub fn alive(pid: u32) -> bool {
    stat_fields(pid)
        .and_then(|f| f.into_iter().next())
        .is_some_and(|state| !matches!(state.as_str(), "Z" | "X" | "x"))
}

/// Resident memory of a process, in bytes (None when it is gone): resident
/// pages from /proc/PID/statm times the page size.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * sysconf(libc::_SC_PAGESIZE)?)
}

/// A process's peak resident memory (VmHWM), in bytes.
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU seconds a process has used, user plus system, all its threads:
/// utime and stime (fields 14 and 15 of /proc/PID/stat) in clock ticks,
/// divided by the system's ticks per second.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    // f[0] is field 3 (the state), so field N is f[N - 3].
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let ticks = sysconf(libc::_SC_CLK_TCK)?;
    Some((utime + stime) as f64 / ticks as f64)
}

/// When a process started: its `starttime` (field 22 of /proc/PID/stat,
/// clock ticks after boot) plus the boot time (`btime` in /proc/stat).
pub fn start_time(pid: u32) -> Option<std::time::SystemTime> {
    let f = stat_fields(pid)?;
    let ticks: u64 = f.get(19)?.parse().ok()?;
    let hz = sysconf(libc::_SC_CLK_TCK)?;
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(
        std::time::UNIX_EPOCH
            + Duration::from_secs(btime)
            + Duration::from_millis(ticks * 1000 / hz),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn this_process_started_a_moment_ago() {
        let t = start_time(std::process::id()).expect("own start time");
        let age = std::time::SystemTime::now()
            .duration_since(t)
            .unwrap_or_default();
        assert!(age < Duration::from_secs(3600), "{age:?}");
        assert!(start_time(u32::MAX).is_none());
    }

    #[test]
    fn this_machine_without_a_lookup() {
        for h in [
            "localhost",
            "127.0.0.1",
            "::1",
            "[::1]",
            "0.0.0.0",
            "::",
            "x.localhost",
        ] {
            assert!(is_local_host(h), "{h}");
        }
        for h in ["10.0.0.1", "example.com", "db"] {
            assert!(!is_local_host(h), "{h}");
        }
    }

    /// setsockopt's answer is checked: on a descriptor that is not a socket
    /// it fails (ENOTSOCK), and the caller hears of it.
    #[test]
    fn a_receive_timeout_that_cannot_be_set_is_an_error() {
        let f = std::fs::File::open("/dev/null").expect("open /dev/null");
        let e = set_recv_timeout(f.as_fd(), NETLINK_TIMEOUT).expect_err("not a socket");
        assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK), "{e}");
    }

    /// When the timeout cannot be set, the netlink lookup fails before it
    /// waits on `recv`, and the listeners come from /proc.
    #[test]
    fn a_failed_timeout_falls_back_to_proc() {
        fn refuse(_: BorrowedFd<'_>, _: Duration) -> io::Result<()> {
            Err(io::Error::from_raw_os_error(libc::ENOPROTOOPT))
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let e = listening_inodes_netlink(port, refuse).expect_err("refused");
        assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}");
        let found = listening_inodes_with(port, refuse);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found, listening_inodes_proc(port));
    }

    /// A peer that never answers ends the dump with EAGAIN once the receive
    /// timeout passes, instead of blocking the check for ever.
    #[test]
    fn a_silent_peer_is_an_error_not_a_hang() {
        let (ours, _silent) = std::os::unix::net::UnixDatagram::pair().expect("socketpair");
        set_recv_timeout(ours.as_fd(), Duration::from_millis(20)).expect("timeout");
        let e = dump_listening(ours.as_fd(), 5432).expect_err("no answer");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    }

    /// Netlink and /proc agree on real listeners (IPv4 and, where the
    /// machine has it, IPv6), and on a port nothing listens on.
    #[test]
    fn netlink_and_proc_find_the_same_listeners() {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind v4");
        let port = v4.local_addr().expect("addr").port();
        let from_proc = listening_inodes_proc(port);
        assert_eq!(from_proc.len(), 1, "{from_proc:?}");
        assert_eq!(
            listening_inodes_netlink(port, set_recv_timeout).expect("netlink"),
            from_proc
        );
        if let Ok(v6) = std::net::TcpListener::bind("[::1]:0") {
            let p6 = v6.local_addr().expect("addr").port();
            let from_proc = listening_inodes_proc(p6);
            assert_eq!(from_proc.len(), 1, "{from_proc:?}");
            assert_eq!(
                listening_inodes_netlink(p6, set_recv_timeout).expect("netlink"),
                from_proc
            );
        }
        drop(v4);
        assert!(
            listening_inodes_netlink(port, set_recv_timeout)
                .expect("netlink")
                .is_empty()
        );
        // The owner is found through the inode: this test process.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let owners = listeners(l.local_addr().expect("addr").port());
        assert_eq!(
            owners.iter().map(|p| p.pid).collect::<Vec<_>>(),
            vec![std::process::id()]
        );
    }

    #[test]
    fn this_process_is_alive_and_a_missing_one_is_not() {
        assert!(alive(std::process::id()));
        // Above the kernel's pid_max (at most 2^22): no such process.
        assert!(!alive(u32::MAX));
        assert_eq!(rss_bytes(u32::MAX), None);
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    /// A child that has exited is not alive, both before its parent reaps it
    /// (a zombie) and after.
    #[test]
    fn an_exited_child_is_not_alive_zombie_or_reaped() {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        // Wait for the exit without reaping (WNOWAIT): the child stays a zombie.
        // SAFETY: waitid(2) on our own child with a zeroed siginfo_t it fills in.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        assert_eq!(rc, 0, "waitid: {}", io::Error::last_os_error());
        let state = stat_fields(pid).and_then(|f| f.into_iter().next());
        assert_eq!(state.as_deref(), Some("Z"), "unreaped: a zombie");
        assert!(!alive(pid), "a zombie is not alive");
        child.wait().expect("reap");
        assert!(!alive(pid), "a reaped child is not alive");
    }

    #[test]
    fn memory_of_this_process() {
        let me = std::process::id();
        let rss = rss_bytes(me).expect("rss");
        let page = sysconf(libc::_SC_PAGESIZE).expect("page size");
        assert!(rss > 0);
        assert_eq!(rss % page, 0, "whole pages");
        // VmRSS says the same in kB (give or take pages touched meanwhile).
        let vm_rss = std::fs::read_to_string(format!("/proc/{me}/status"))
            .expect("status")
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .expect("VmRSS")
            * 1024;
        assert!(
            rss.abs_diff(vm_rss) < 64 << 20,
            "statm {rss} vs VmRSS {vm_rss}"
        );
        let peak = peak_rss_bytes(me).expect("peak");
        assert!(
            peak > 0 && peak + (64 << 20) >= rss,
            "peak {peak}, rss {rss}"
        );
    }

    /// CPU time from /proc agrees with getrusage(2), which counts in
    /// microseconds: the ticks are divided by the system's rate, not a
    /// guessed 100.
    #[test]
    fn cpu_time_agrees_with_getrusage() {
        fn rusage_seconds() -> f64 {
            // SAFETY: getrusage(2) fills in the zeroed struct we own.
            let ru = unsafe {
                let mut ru: libc::rusage = std::mem::zeroed();
                assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut ru), 0);
                ru
            };
            let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            tv(ru.ru_utime) + tv(ru.ru_stime)
        }
        // Burn some CPU so the figure is well above zero.
        let mut x = 0u64;
        while rusage_seconds() < 0.2 {
            for i in 0..100_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let before = rusage_seconds();
        let cpu = cpu_seconds(std::process::id()).expect("cpu");
        let after = rusage_seconds();
        let tick = 1.0 / sysconf(libc::_SC_CLK_TCK).expect("ticks") as f64;
        assert!(
            cpu >= before - 2.0 * tick && cpu <= after + 2.0 * tick,
            "/proc {cpu} s, getrusage {before}..{after} s"
        );
    }
}
