//! The terminal view of a frame: totals against max_connections, active
//! sessions against the thresholds with a trend line, sessions by
//! application and state, lock waits and the longest query.

use super::{Frame, Level, Thresholds, Trend, iso, level};
use crate::support::redact::{self, Redactor};
use crate::support::style::{Tone, paint, sparkline_between};
use std::fmt::Write as _;

fn tone(l: Level) -> Tone {
    match l {
        Level::Ok => Tone::Good,
        Level::Warn => Tone::Warn,
        Level::Critical => Tone::Bad,
    }
}

/// The trend of active sessions, scaled from 0 to the largest value or
/// `top` (at least 1), so that a quiet pool draws low bars.
pub fn trend_line(trend: &Trend, top: u32) -> String {
    let top = trend.values().max().unwrap_or(0).max(top).max(1);
    sparkline_between(trend.values().map(f64::from), 0.0, f64::from(top))
}

/// What the view is watching, for its title (e.g. `127.0.0.1:5432 chat_backend_db`).
pub struct View<'a> {
    pub target: &'a str,
    pub thresholds: Thresholds,
    pub color: bool,
    pub redactor: &'a Redactor,
}

/// PgBouncer's pools under the sessions.
fn bouncer_table(o: &mut String, b: &super::bouncer::BouncerView, red: &Redactor) {
    if let Some(e) = &b.error {
        let _ = writeln!(o, "PgBouncer {}: {}", b.at, red.redact(e));
        return;
    }
    let size = b.pool_size.map_or("?".into(), |n| n.to_string());
    let _ = writeln!(o, "PgBouncer {} (default_pool_size {size}):", b.at);
    let mut t = tabled::builder::Builder::default();
    t.push_record([
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "sv_active",
        "sv_idle",
        "maxwait",
        "mode",
    ]);
    for p in &b.pools {
        t.push_record([
            p.database.clone(),
            p.user.clone(),
            p.cl_active.to_string(),
            p.cl_waiting.to_string(),
            p.sv_active.to_string(),
            p.sv_idle.to_string(),
            format!("{:.1} s", p.maxwait_s),
            p.pool_mode.clone(),
        ]);
    }
    let mut table = t.build();
    table.with(tabled::settings::Style::rounded());
    let _ = writeln!(o, "{table}");
}

/// The terminal view of a frame.
pub fn render(f: &Frame, trend: &Trend, v: &View) -> String {
    let (t, color, red, target) = (v.thresholds, v.color, v.redactor, v.target);
    let mut o = String::new();
    match f {
        Frame::Down { time, error } => {
            let _ = writeln!(o, "chatops watch-connections — {target} — {}", iso(*time));
            let msg = format!("DISCONNECTED: {} (retrying)", red.redact(error));
            let _ = writeln!(o, "{}", paint(&msg, Tone::Bad, color));
        }
        Frame::Up {
            time,
            snap,
            took,
            pgbouncer,
        } => {
            let lv = level(snap, t);
            let _ = writeln!(
                o,
                "chatops watch-connections — {target} — {} (sample {:.1} ms)",
                iso(*time),
                took.as_secs_f64() * 1000.0
            );
            let usable = snap.usable().max(1);
            let _ = writeln!(
                o,
                "server: {} of max_connections {} ({} usable, {:.0}%)   database: {} session(s)",
                snap.server_total,
                snap.max_connections,
                snap.usable(),
                snap.server_total as f64 / usable as f64 * 100.0,
                snap.total()
            );
            let active = snap.in_state("active");
            let active_line = format!(
                "active: {active} (warn > {}, critical > {})  [{}]",
                t.warn_active,
                t.critical_active,
                lv.as_str()
            );
            let _ = writeln!(o, "{}", paint(&active_line, tone(lv), color));
            let _ = writeln!(o, "trend:  {}", trend_line(trend, t.critical_active));
            let mut b = tabled::builder::Builder::default();
            b.push_record(["application_name", "state", "count"]);
            for g in &snap.groups {
                let name = if g.application_name.is_empty() {
                    "(none)".to_string()
                } else {
                    g.application_name.clone()
                };
                b.push_record([name, g.state.clone(), g.count.to_string()]);
            }
            if snap.groups.is_empty() {
                b.push_record(["(no sessions)".to_string(), String::new(), "0".to_string()]);
            }
            let mut table = b.build();
            table.with(tabled::settings::Style::rounded());
            let _ = writeln!(o, "{table}");
            let _ = writeln!(
                o,
                "waiting on locks: {}   idle in transaction: {}{}",
                snap.waiting_lock,
                snap.in_state("idle in transaction"),
                snap.oldest_idle_in_transaction_ms
                    .map(|ms| format!(" (oldest {:.1} s)", ms / 1000.0))
                    .unwrap_or_default()
            );
            match &snap.longest {
                Some(l) => {
                    let _ = writeln!(
                        o,
                        "longest query: {:.1} s, pid {} ({}): {}",
                        l.ms / 1000.0,
                        l.pid,
                        l.application_name,
                        redact::sql_text(red, &l.query, 100)
                    );
                }
                None => {
                    let _ = writeln!(o, "longest query: none active");
                }
            }
            if let Some(b) = pgbouncer {
                bouncer_table(&mut o, b, red);
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::super::tests::{T, up};
    use super::*;

    #[test]
    fn trend_scales_to_the_critical_threshold() {
        let t: Trend = [0, 24, 48].into_iter().collect();
        assert_eq!(trend_line(&t, 48), "▁▅█");
        let t: Trend = [0, 24, 96].into_iter().collect();
        assert_eq!(
            trend_line(&t, 48),
            "▁▃█",
            "above the top: scaled to the max"
        );
        assert_eq!(trend_line(&Trend::new(), 48), "");
    }

    #[test]
    fn human_view_masks_the_query() {
        let red = Redactor::new();
        let v = View {
            target: "db",
            thresholds: T,
            color: false,
            redactor: &red,
        };
        let h = render(&up(), &Trend::new(), &v);
        assert!(
            h.contains("active: 41 (warn > 40, critical > 48)  [warn]"),
            "{h}"
        );
        assert!(h.contains("prisma"));
        assert!(!h.contains("hunter2"));
    }
}
