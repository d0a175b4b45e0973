//! Terminal styling shared by every human view: colours by tone and a
//! one-line sparkline.

use owo_colors::OwoColorize;

/// What a piece of text says, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// All is well (green).
    Good,
    /// Worth a look (yellow).
    Warn,
    /// Broken (bold red).
    Bad,
    /// Not relevant now (dimmed).
    Muted,
}

/// `s` coloured by its tone, or unchanged when colours are off.
pub fn paint(s: &str, tone: Tone, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    match tone {
        Tone::Good => s.green().to_string(),
        Tone::Warn => s.yellow().to_string(),
        Tone::Bad => s.red().bold().to_string(),
        Tone::Muted => s.dimmed().to_string(),
    }
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A one-line trend, ▁▂▃▄▅▆▇█ scaled between `lo` and `hi` (values outside
/// are clamped; a flat range draws the lowest bar).
pub fn sparkline_between(xs: impl IntoIterator<Item = f64>, lo: f64, hi: f64) -> String {
    let span = hi - lo;
    xs.into_iter()
        .map(|x| {
            if span.abs() < f64::EPSILON || !span.is_finite() {
                BARS[0]
            } else {
                BARS[(((x - lo) / span) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// A one-line trend scaled between the smallest and largest value.
pub fn sparkline(xs: &[f64]) -> String {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    sparkline_between(xs.iter().copied(), lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_between_min_and_max() {
        assert_eq!(sparkline(&[1.0, 1.0, 1.0]), "▁▁▁");
        assert_eq!(sparkline(&[0.0, 7.0]), "▁█");
        assert_eq!(
            sparkline(&[10.0, 11.0, 12.0, 13.0, 14.0]).chars().count(),
            5
        );
        assert_eq!(sparkline(&[]), "");
    }

    #[test]
    fn sparkline_between_fixed_bounds_clamps() {
        assert_eq!(sparkline_between([0.0, 24.0, 48.0], 0.0, 48.0), "▁▅█");
        assert_eq!(sparkline_between([-5.0, 96.0], 0.0, 48.0), "▁█");
    }

    #[test]
    fn paint_is_identity_without_colour() {
        assert_eq!(paint("x", Tone::Bad, false), "x");
        assert_ne!(paint("x", Tone::Bad, true), "x");
        assert!(paint("x", Tone::Good, true).contains('x'));
    }
}
