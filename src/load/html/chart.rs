//! Drawing a chart of [`super::series`] as inline SVG: stage bands and
//! labels, axes, reference lines, the series' paths in a plot whose x unit
//! is one second, and the breaking point; and the values the page's
//! script shows on hover.

use super::super::monitor::Backend;
use super::esc;
use super::series::{ChartDef, RefLine, SeriesDef};
use super::timeline::Timeline;
use serde_json::{Value, json};
use std::fmt::Write;

#[derive(Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    /// Decades (latency: a 5 ms median and a 30 s timeout on one chart).
    Log,
}

// The frame (viewBox units): plot area inside margins.
const W: f64 = 1000.0;
const H: f64 = 220.0;
const L: f64 = 58.0;
const R: f64 = 14.0;
const T: f64 = 30.0;
const B: f64 = 22.0;
const PW: f64 = W - L - R;
const PH: f64 = H - T - B;
/// The plot's own y unit: 0 at the top, 1000 at the bottom.
const PY: f64 = 1000.0;

/// Rounds for the hover data: three significant figures are plenty.
pub fn compact(v: f64) -> Value {
    let a = v.abs();
    let r = if a >= 100.0 {
        v.round()
    } else if a >= 10.0 {
        (v * 10.0).round() / 10.0
    } else {
        (v * 100.0).round() / 100.0
    };
    if r.fract() == 0.0 && r.abs() < 1e15 {
        json!(r as i64)
    } else {
        json!(r)
    }
}

/// A tick label: 1.2k, 350, 0.5.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6).replace(".0M", "M")
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3).replace(".0k", "k")
    } else if a >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

struct YAxis {
    scale: Scale,
    lo: f64,
    hi: f64,
    step: f64,
}

impl YAxis {
    fn new(scale: Scale, max: f64, min_pos: f64) -> YAxis {
        match scale {
            Scale::Linear => {
                let max = if max > 0.0 { max } else { 1.0 };
                let step = nice_step(max / 5.0);
                YAxis {
                    scale,
                    lo: 0.0,
                    hi: (max / step).ceil() * step,
                    step,
                }
            }
            Scale::Log => {
                let lo = min_pos.max(0.1).log10().floor();
                let hi = max.max(1.0).log10().ceil().max(lo + 1.0);
                YAxis {
                    scale,
                    lo,
                    hi,
                    step: 1.0,
                }
            }
        }
    }
    /// 0 (bottom) to 1 (top).
    fn frac(&self, v: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.max(10f64.powf(self.lo)).log10() - self.lo) / (self.hi - self.lo),
        };
        f.clamp(0.0, 1.0)
    }
    fn plot_y(&self, v: f64) -> i64 {
        ((1.0 - self.frac(v)) * PY).round() as i64
    }
    fn frame_y(&self, v: f64) -> f64 {
        T + (1.0 - self.frac(v)) * PH
    }
    fn ticks(&self) -> Vec<f64> {
        match self.scale {
            Scale::Linear => (0..=((self.hi / self.step).round() as i64))
                .map(|i| i as f64 * self.step)
                .collect(),
            Scale::Log => (self.lo as i64..=self.hi as i64)
                .map(|e| 10f64.powi(e as i32))
                .collect(),
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let n = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

fn clock(t: f64) -> String {
    let t = t.round() as i64;
    format!("{}:{:02}", t / 60, t % 60)
}

/// The path of one series: x is the second, y the plot unit; gaps where a
/// second has no value or a new band (stage) begins; flat runs drawn by
/// their ends only.
fn path(ys: &[Option<i64>], bands: &[Option<usize>]) -> String {
    let band = |i: usize| bands.get(i).copied().flatten();
    let mut d = String::new();
    let mut i = 0;
    while i < ys.len() {
        let Some(y0) = ys[i] else {
            i += 1;
            continue;
        };
        let start = i;
        let _ = write!(d, "M{i} {y0}");
        i += 1;
        while i < ys.len() {
            let Some(y) = ys[i] else { break };
            if band(i) != band(i - 1) {
                break;
            }
            let prev = ys[i - 1];
            let next = ys
                .get(i + 1)
                .copied()
                .flatten()
                .filter(|_| band(i + 1) == band(i));
            let last = next.is_none();
            if last || prev != Some(y) || next != Some(y) {
                let _ = write!(d, "L{i} {y}");
            }
            i += 1;
        }
        if i == start + 1 {
            d.push_str("h0");
        }
    }
    d
}

/// One chart: its SVG figure, and its hover data (or None when empty).
pub fn render(def: &ChartDef, t: &Timeline, backend: &Backend, index: usize) -> (String, Value) {
    let n = t.rows.len().max(2);
    let shown: Vec<(&SeriesDef, Vec<Option<f64>>)> = def
        .series
        .iter()
        .map(|s| (s, t.rows.iter().map(|r| (s.value)(r)).collect::<Vec<_>>()))
        .filter(|(s, v)| {
            v.iter().any(|x| x.is_some()) && (s.always || v.iter().flatten().any(|x| *x != 0.0))
        })
        .collect();
    let mut o = String::new();
    let _ = write!(
        o,
        "<figure class=\"chart\" id=\"chart-{}\" data-chart=\"{index}\"><figcaption><b>{}</b>",
        def.id,
        esc(def.title)
    );
    if shown.is_empty() {
        let _ = write!(
            o,
            " <span class=\"empty\">{}</span></figcaption></figure>",
            esc(def.empty)
        );
        return (o, Value::Null);
    }
    let data_max = shown
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .fold(0.0f64, |a, b| a.max(*b));
    let min_pos = shown
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .filter(|x| **x > 0.0)
        .fold(f64::INFINITY, |a, b| a.min(*b));
    let refs: Vec<RefLine> = (def.refs)(t, backend);
    let mut max = data_max;
    for r in &refs {
        let v = r.spans.iter().map(|s| s.2).fold(0.0f64, f64::max);
        if r.key || v <= 3.0 * max.max(1.0) {
            max = max.max(v);
        }
    }
    let y = YAxis::new(def.scale, max * 1.05, min_pos.min(max));
    // legend
    o.push_str("<span class=\"legend\">");
    for (s, _) in &shown {
        let _ = write!(
            o,
            "<i style=\"--c:{}\"{}></i>{} ",
            s.color,
            if s.dash { " class=\"d\"" } else { "" },
            esc(s.name)
        );
    }
    for r in &refs {
        let above = r.spans.iter().any(|s| y.frac(s.2) >= 1.0 && s.2 > y.hi);
        let _ = write!(
            o,
            "<i class=\"d\" style=\"--c:{}\"></i>{}{} ",
            r.color,
            esc(&r.name),
            if above { " (above the chart)" } else { "" }
        );
    }
    o.push_str("</span></figcaption>");
    let _ = write!(
        o,
        "<svg class=\"frame\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(def.title)
    );
    let x = |s: f64| L + s / (n - 1) as f64 * PW;
    // stage bands and labels
    for (i, b) in t.bands.iter().enumerate() {
        let class = match b.status {
            None => "warm",
            Some(super::super::result::StageStatus::Fail) => "fail",
            Some(super::super::result::StageStatus::Interrupted) => "cut",
            Some(_) if i % 2 == 0 => "even",
            Some(_) => "odd",
        };
        let (x0, x1) = (x(b.start), x(b.end));
        let _ = write!(
            o,
            "<rect class=\"band {class}\" x=\"{x0:.1}\" y=\"{T}\" width=\"{:.1}\" height=\"{PH}\"><title>{}</title></rect>",
            (x1 - x0).max(0.5),
            esc(&b.name)
        );
        // Labels alternate between two rows, so one may run on over the
        // next band; the warm-up's keeps to its own.
        let room = match b.status {
            None => x1 - x0,
            Some(_) => t.bands.get(i + 2).map(|n2| x(n2.start)).unwrap_or(L + PW) - x0,
        } - 6.0;
        let _ = write!(
            o,
            "<text class=\"stage\" x=\"{:.1}\" y=\"{}\">{}</text>",
            x0 + 2.0,
            if i % 2 == 0 { 12 } else { 25 },
            esc(&fit(&b.name, room))
        );
    }
    // y grid and labels
    for v in y.ticks() {
        let fy = y.frame_y(v);
        let label = match (def.scale, def.unit) {
            (Scale::Log, _) if v >= 1000.0 => format!("{} s", short(v / 1000.0)),
            (_, "") => short(v),
            (_, u) => format!("{} {u}", short(v)),
        };
        let _ = write!(
            o,
            "<line class=\"grid\" x1=\"{L}\" x2=\"{}\" y1=\"{fy:.1}\" y2=\"{fy:.1}\"/><text class=\"yl\" x=\"{}\" y=\"{:.1}\">{}</text>",
            L + PW,
            L - 4.0,
            fy + 3.5,
            esc(&label)
        );
    }
    // x ticks
    let span = (n - 1) as f64;
    let step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| span / s <= 12.0)
    .unwrap_or(3600.0);
    let mut tk = 0.0;
    while tk <= span {
        let _ = write!(
            o,
            "<text class=\"xl\" x=\"{:.1}\" y=\"{}\">{}</text>",
            x(tk),
            H - 6.0,
            clock(tk)
        );
        tk += step;
    }
    // the plot: one unit per second across, PY units down
    let _ = write!(
        o,
        "<svg class=\"plot\" x=\"{L}\" y=\"{T}\" width=\"{PW}\" height=\"{PH}\" viewBox=\"0 0 {} {PY}\" preserveAspectRatio=\"none\">",
        n - 1
    );
    let mut refs_json = Vec::new();
    for r in &refs {
        let mut d = String::new();
        for (a, b, v) in &r.spans {
            let py = y.plot_y(*v);
            let _ = write!(d, "M{a:.1} {py}H{b:.1}");
        }
        let _ = write!(o, "<path class=\"ref\" stroke=\"{}\" d=\"{d}\"/>", r.color);
        refs_json.push(json!({
            "n": r.name,
            "s": r.spans.iter().map(|(a, b, v)| json!([a.round(), b.round(), compact(*v)])).collect::<Vec<_>>(),
        }));
    }
    let mut series_json = Vec::new();
    for (s, v) in &shown {
        let ys: Vec<Option<i64>> = v.iter().map(|x| x.map(|x| y.plot_y(x))).collect();
        let bands: Vec<Option<usize>> = t.rows.iter().map(|r| r.band).collect();
        let _ = write!(
            o,
            "<path class=\"line{}\" stroke=\"{}\" d=\"{}\"/>",
            if s.dash { " d" } else { "" },
            s.color,
            path(&ys, &bands)
        );
        series_json.push(json!({
            "n": s.name,
            "c": s.color,
            "v": v.iter().map(|x| x.map(compact).unwrap_or(Value::Null)).collect::<Vec<_>>(),
        }));
    }
    o.push_str("<line class=\"cursor\" x1=\"-9\" x2=\"-9\" y1=\"0\" y2=\"1000\"/></svg>");
    if let Some((at, cause)) = &t.breaking {
        let bx = x(*at);
        let right = bx > L + PW * 0.7;
        let _ = write!(
            o,
            "<line class=\"bpline\" x1=\"{bx:.1}\" x2=\"{bx:.1}\" y1=\"{T}\" y2=\"{}\"/><text class=\"bpl\" x=\"{:.1}\" y=\"{}\" text-anchor=\"{}\">⚡ breaking point: {}</text>",
            T + PH,
            if right { bx - 4.0 } else { bx + 4.0 },
            T + 12.0,
            if right { "end" } else { "start" },
            esc(cause)
        );
    }
    o.push_str("</svg></figure>");
    let data = json!({
        "unit": def.unit,
        "series": series_json,
        "refs": refs_json,
    });
    (o, data)
}

/// A stage name cut to `room` units (about 6.2 a character).
fn fit(name: &str, room: f64) -> String {
    let chars = (room / 6.2).floor() as usize;
    let len = name.chars().count();
    if len <= chars {
        name.to_string()
    } else if chars >= 3 {
        let mut s: String = name.chars().take(chars - 1).collect();
        s.push('…');
        s
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_break_at_gaps_and_skip_flat_runs() {
        let ys = [
            Some(5),
            Some(5),
            Some(5),
            Some(7),
            None,
            Some(1),
            None,
            None,
        ];
        assert_eq!(path(&ys, &[]), "M0 5L2 5L3 7M5 1h0");
        assert_eq!(path(&[None, None], &[]), "");
        // a new stage starts a new line
        let b = [Some(0), Some(0), Some(1), Some(1)];
        assert_eq!(
            path(&[Some(5), Some(5), Some(5), Some(5)], &b),
            "M0 5L1 5M2 5L3 5"
        );
    }

    #[test]
    fn axes_are_round() {
        let y = YAxis::new(Scale::Linear, 437.0, 1.0);
        assert_eq!(y.hi, 500.0);
        assert_eq!(y.ticks(), [0.0, 100.0, 200.0, 300.0, 400.0, 500.0]);
        assert_eq!(y.plot_y(0.0), 1000);
        assert_eq!(y.plot_y(500.0), 0);
        let l = YAxis::new(Scale::Log, 31_000.0, 0.7);
        assert_eq!((l.lo, l.hi), (-1.0, 5.0));
        assert_eq!(l.plot_y(0.0), 1000, "zero sits on the floor of a log axis");
        assert_eq!(short(1500.0), "1.5k");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(compact(12.345), json!(12.3));
        assert_eq!(compact(3.0), json!(3));
        assert_eq!(fit("baseline", 100.0), "baseline");
        assert_eq!(fit("ultimate", 30.0), "ult…");
        assert_eq!(fit("ultimate", 10.0), "");
        assert_eq!(clock(75.0), "1:15");
    }
}
