//! "Did you mean …?": the nearest valid word for a misspelt one.

/// The closest candidate, if it is close enough to be a plausible typo
/// (case, `-` for `_`, and up to a third of the word's letters wrong).
pub fn nearest<'a, I: IntoIterator<Item = &'a str>>(word: &str, candidates: I) -> Option<String> {
    let lw = word.to_ascii_lowercase().replace('-', "_");
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::levenshtein(&lw, &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = (word.chars().count() / 3).max(2);
    (d <= limit && d > 0 || (d == 0 && c != word)).then(|| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        let kinds = ["pg_ready", "pg_connect", "port", "http", "env"];
        assert_eq!(nearest("pg_raedy", kinds), Some("pg_ready".into()));
        assert_eq!(nearest("htp", kinds), Some("http".into()));
        assert_eq!(nearest("pg-ready", kinds), Some("pg_ready".into()));
        assert_eq!(nearest("HTTP", kinds), Some("http".into()));
        assert_eq!(nearest("http", kinds), None);
        assert_eq!(nearest("completely_different", kinds), None);
    }
}
