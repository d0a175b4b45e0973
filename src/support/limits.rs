//! The open-file limit: one socket per virtual user, so a large run raises
//! this process's soft RLIMIT_NOFILE up to the hard limit first, and says
//! with the numbers and the fix when even the hard limit is too low.

/// The limit as it was and as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nofile {
    pub before: u64,
    pub now: u64,
    pub hard: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NofileError {
    #[error(
        "{what} need about {need} open files, but this process may open at most {hard} (the hard limit; the soft one was {soft}): raise it with `ulimit -n {need}` (as root, or `LimitNOFILE=` / /etc/security/limits.conf for a service) or run fewer"
    )]
    TooLow {
        what: String,
        need: u64,
        soft: u64,
        hard: u64,
    },
    #[error("cannot read or set the open-file limit: {0}")]
    Os(String),
}

fn get() -> Result<libc::rlimit, NofileError> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(NofileError::Os(std::io::Error::last_os_error().to_string()));
    }
    Ok(r)
}

/// Raises the soft limit to the hard one (when lower), then checks that
/// `need` descriptors fit; `what` names who needs them in the error.
pub fn raise_nofile(need: u64, what: &str) -> Result<Nofile, NofileError> {
    let r = get()?;
    let (soft, hard): (u64, u64) = (r.rlim_cur, r.rlim_max);
    let mut now = soft;
    if soft < hard {
        let want = libc::rlimit {
            rlim_cur: r.rlim_max,
            rlim_max: r.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            now = hard;
        }
    }
    if need > now {
        return Err(NofileError::TooLow {
            what: what.to_string(),
            need,
            soft,
            hard,
        });
    }
    Ok(Nofile {
        before: soft,
        now,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_to_the_hard_limit_and_names_the_fix_beyond_it() {
        let n = raise_nofile(16, "a test").expect("16 files fit");
        assert!(n.before <= n.now && n.now <= n.hard, "{n:?}");
        let e = raise_nofile(u64::MAX, "10 virtual users").expect_err("too many");
        let s = e.to_string();
        assert!(
            s.contains("ulimit -n") && s.contains(&n.hard.to_string()),
            "{s}"
        );
    }
}
