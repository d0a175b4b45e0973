//! Diagnosis: from what a check observed (a [`Fault`]) to the root cause and
//! the exact remedy. All the knowledge of what failures mean lives here, so
//! checks only report facts.
//!
//! `fault.rs` holds the data (one flat [`Fault`] enum, its variants grouped
//! by [`Family`], each with a stable cause code); each family's file pairs
//! its variants with their wording (`pg.rs` also classifies PostgreSQL's
//! errors, `load.rs` ranks a load stage's breaking point); `net.rs`
//! classifies network, HTTP client and TLS errors from their types;
//! `known.rs` recognises what the seed's backend says when it fails.

mod activity;
pub mod cause;
mod env;
mod fault;
mod fault_parts;
mod http;
mod known;
pub mod load;
mod log;
pub mod net;
pub mod pg;
pub mod pgbouncer;
mod pool;
mod port;
mod project;
mod rate_limit;
mod sql;
mod stability;
pub mod witness;

pub use fault::{DriftItem, EnvFileItem, EnvState, Family, Fault, LimiterMatch};
pub use known::{excerpt, known_error};
pub use load::{StageEvidence, breaking_point};
pub use net::{NetError, TlsProblem};
pub use pgbouncer::BouncerFault;

/// A family's wording of a fault: its root cause and fix.
pub(crate) fn worded(root_cause: String, remedy: String) -> Option<Diagnosis> {
    Some(Diagnosis { root_cause, remedy })
}

/// What a fault means: its root cause and the fix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnosis {
    pub root_cause: String,
    pub remedy: String,
}

/// Root cause and remedy for a fault, worded by its family's file.
pub fn diagnose(f: &Fault) -> Diagnosis {
    // Each family's `word` covers its variants (a test checks every one);
    // should a variant be filed under the wrong family, it still says what
    // was observed rather than nothing.
    word(f.family(), f).unwrap_or_else(|| Diagnosis {
        root_cause: format!("{} ({} fault): {f:?}", f.cause_code(), f.family().as_str()),
        remedy: "Read the check's evidence above.".into(),
    })
}

fn word(family: Family, f: &Fault) -> Option<Diagnosis> {
    match family {
        Family::Pg => pg::word(f),
        Family::Port => port::word(f),
        Family::Http => http::word(f),
        Family::Env => env::word(f),
        Family::RateLimit => rate_limit::word(f),
        Family::Log => log::word(f),
        Family::Stability => stability::word(f),
        Family::Pool => pool::word(f),
        Family::Sql => sql::word(f),
        Family::Activity => activity::word(f),
        Family::Load => load::word(f),
        Family::Project => project::word(f),
        Family::PgBouncer => pgbouncer::word(f),
    }
}

#[cfg(test)]
mod samples;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The variants, counted in `Fault::code`'s exhaustive match.
    fn variants() -> usize {
        include_str!("fault.rs").matches("{ .. } => (").count()
            + include_str!("pgbouncer.rs")
                .matches("{ .. } => \"pgbouncer_")
                .count()
    }

    #[test]
    fn every_variant_has_a_sample_with_its_own_code() {
        let all = samples::all();
        assert!(variants() >= 47, "{}", variants());
        assert_eq!(all.len(), variants());
        let codes: BTreeSet<&str> = all.iter().map(Fault::cause_code).collect();
        assert_eq!(codes.len(), all.len(), "{codes:?}");
        let families: BTreeSet<&str> = all.iter().map(|f| f.family().as_str()).collect();
        assert_eq!(families.len(), Family::ALL.len(), "{families:?}");
    }

    #[test]
    fn each_family_words_exactly_its_own_variants() {
        for f in samples::all() {
            for fam in Family::ALL {
                assert_eq!(
                    word(fam, &f).is_some(),
                    fam == f.family(),
                    "{fam:?} and {}",
                    f.cause_code()
                );
            }
            let d = diagnose(&f);
            assert!(d.root_cause.len() > 20, "{}: {d:?}", f.cause_code());
            assert!(d.remedy.len() > 20, "{}: {d:?}", f.cause_code());
            assert_ne!(d.root_cause, d.remedy);
        }
    }
}
