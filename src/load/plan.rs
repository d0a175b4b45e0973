//! The load plan: stages with their pass criteria, the request mix, the
//! model (closed or open), think time and cooldown. Read from YAML with
//! located errors (like playbooks), from `--stages` on the command line, or
//! the shipped seed plan; `--quick` scales every duration down.

use super::template::{self, MixItem, RequestTemplate};
use crate::playbook::located::Located;
use crate::playbook::{LoadError, ParamError, yaml};
use crate::support::duration::Dur;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Closed: a fixed number of virtual users, each waiting for its answer
/// (k6 ramping-vus). Open: a target arrival rate, latency measured from the
/// scheduled send time (wrk2, k6 arrival-rate executors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    Closed,
    Open,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub model: Option<Model>,
    /// Pause between a virtual user's requests (closed model).
    #[serde(default)]
    pub think_time: Option<Dur>,
    /// Pause between stages.
    #[serde(default)]
    pub cooldown: Option<Dur>,
    /// Stop at the first failing stage (default true).
    #[serde(default)]
    pub stop_on_failure: Option<bool>,
    /// Per-request timeout (default 30s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Load before the first stage, not counted (default 3s; 0s for none).
    #[serde(default)]
    pub warmup: Option<Dur>,
    /// Lists for `${pick.NAME}`.
    #[serde(default)]
    pub vars: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub mix: Vec<MixItem>,
    pub stages: Vec<StageSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub name: String,
    /// Virtual users (closed) or connections (open).
    pub vus: u32,
    /// Target arrival rate in requests per second (open model only).
    #[serde(default)]
    pub rate: Option<f64>,
    pub duration: Dur,
    /// Pass criterion: p95 latency below this many milliseconds.
    #[serde(default)]
    pub p95_ms: Option<f64>,
    /// Pass criterion: error rate at most this percentage.
    #[serde(default)]
    pub max_error_pct: Option<f64>,
}

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub model: Model,
    pub think_time: Duration,
    pub cooldown: Duration,
    pub stop_on_failure: bool,
    pub timeout: Duration,
    /// Load at the first stage's level before it, not counted (zero: none).
    pub warmup: Duration,
    pub vars: BTreeMap<String, Vec<String>>,
    pub mix: Vec<MixItem>,
    pub stages: Vec<Stage>,
}

/// The warm-up when the plan gives none.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(3);
/// The longest warm-up a plan may ask for.
pub const MAX_WARMUP: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    pub vus: u32,
    pub rate: Option<f64>,
    pub duration: Duration,
    pub p95_ms: Option<f64>,
    pub max_error_pct: Option<f64>,
}

pub const MAX_VUS: u32 = 10_000;

/// The seed's Phase 6 table: name, VUs, seconds, p95 bound (ms), error bound (%).
pub const SEED_STAGES: &[(&str, u32, u64, f64, f64)] = &[
    ("baseline", 5, 30, 100.0, 0.0),
    ("light", 10, 60, 120.0, 0.0),
    ("medium", 25, 120, 150.0, 0.1),
    ("high", 50, 180, 200.0, 0.5),
    ("peak", 75, 240, 250.0, 0.8),
    ("stress", 100, 300, 300.0, 1.0),
    ("ultimate", 120, 300, 350.0, 1.0),
];

/// A located error: the key path inside the plan and what is wrong there.
fn bad(path: impl Into<String>, message: impl Into<String>) -> ParamError {
    ParamError {
        path: path.into(),
        message: message.into(),
    }
}

/// Parses and validates a plan; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Plan, LoadError> {
    let node = yaml::parse(text)
        .map_err(|e| LoadError::new(file, e.loc, "", e.message).with_source(text))?;
    let located = Located::new(&node, "");
    let err = |path: &str, msg: String| {
        LoadError::new(file, Some(located.key_loc(path)), path, msg).with_source(text)
    };
    let pf: PlanFile = located
        .decode()
        .map_err(|e| err(&e.path, e.message.clone()).suggest(e.suggestion()))?;
    validate(pf, file).map_err(|e| err(&e.path, e.message))
}

/// Why a stage's rate does not fit the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("the open model needs a rate (requests per second) for every stage")]
    Missing,
    #[error("must be a positive number of requests per second")]
    Invalid,
    #[error("a rate needs `model: open` (the closed model runs a fixed number of virtual users)")]
    NotOpen,
}

/// The model/rate rule: the open model sends at a rate, so every stage
/// has one (positive, at most 10 million a second); the closed model runs
/// a fixed number of virtual users, so no stage has one.
pub fn check_rate(model: Model, rate: Option<f64>) -> Result<(), RateError> {
    match (model, rate) {
        (Model::Open, None) => Err(RateError::Missing),
        (Model::Open, Some(r)) if !(r.is_finite() && r > 0.0 && r <= 10_000_000.0) => {
            Err(RateError::Invalid)
        }
        (Model::Closed, Some(_)) => Err(RateError::NotOpen),
        _ => Ok(()),
    }
}

/// A stage of a plan whose model or stages came from the command line
/// (`--model`, `--stages`) that breaks the model/rate rule, worded with the
/// flags that fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error(
        "stage `{stage}` has no rate: the open model needs RATE/s for every stage (e.g. --stages {stage}:200/s*{vus}:{secs}s)"
    )]
    NoRate { stage: String, vus: u32, secs: u64 },
    #[error("stage `{stage}` has a rate, which needs the open model (--model open)")]
    NotOpen { stage: String },
    #[error("stage `{stage}`: the rate {error}")]
    Invalid { stage: String, error: RateError },
}

/// Checks every stage of `plan` against its model ([`check_rate`]).
pub fn check_model(plan: &Plan) -> Result<(), ModelError> {
    for s in &plan.stages {
        let stage = s.name.clone();
        match check_rate(plan.model, s.rate) {
            Ok(()) => {}
            Err(RateError::Missing) => {
                return Err(ModelError::NoRate {
                    stage,
                    vus: s.vus,
                    secs: s.duration.as_secs(),
                });
            }
            Err(RateError::NotOpen) => return Err(ModelError::NotOpen { stage }),
            Err(error @ RateError::Invalid) => return Err(ModelError::Invalid { stage, error }),
        }
    }
    Ok(())
}

/// Checks what serde cannot: sizes, criteria, the model/rate agreement and
/// the templates of the mix.
pub fn validate(pf: PlanFile, file: &str) -> Result<Plan, ParamError> {
    let model = pf.model.unwrap_or(Model::Closed);
    let warmup = pf.warmup.map(|d| d.0).unwrap_or(DEFAULT_WARMUP);
    if warmup > MAX_WARMUP {
        return Err(bad(
            "warmup",
            format!("must be at most {}s", MAX_WARMUP.as_secs()),
        ));
    }
    if pf.stages.is_empty() {
        return Err(bad("stages", "a plan needs at least one stage"));
    }
    let mut stages = Vec::new();
    for (i, s) in pf.stages.iter().enumerate() {
        let at = |f: &str| format!("stages[{i}].{f}");
        if s.name.trim().is_empty() {
            return Err(bad(at("name"), "a stage needs a name"));
        }
        if s.vus == 0 || s.vus > MAX_VUS {
            return Err(bad(at("vus"), format!("must be between 1 and {MAX_VUS}")));
        }
        if s.duration.0.is_zero() {
            return Err(bad(at("duration"), "must be longer than 0s"));
        }
        check_rate(model, s.rate).map_err(|e| bad(at("rate"), e.to_string()))?;
        if s.p95_ms.is_some_and(|p| !(p.is_finite() && p > 0.0)) {
            return Err(bad(
                at("p95_ms"),
                "must be a positive number of milliseconds",
            ));
        }
        if s.max_error_pct
            .is_some_and(|p| !(p.is_finite() && (0.0..=100.0).contains(&p)))
        {
            return Err(bad(
                at("max_error_pct"),
                "must be a percentage between 0 and 100",
            ));
        }
        stages.push(Stage {
            name: s.name.trim().to_string(),
            vus: s.vus,
            rate: s.rate,
            duration: s.duration.0,
            p95_ms: s.p95_ms,
            max_error_pct: s.max_error_pct,
        });
    }
    let mix = if pf.mix.is_empty() {
        seed_mix()
    } else {
        pf.mix
    };
    if mix.iter().all(|m| m.weight == 0) {
        return Err(bad("mix", "at least one request needs a weight above 0"));
    }
    let names = template::names(&pf.vars, &mix);
    for (i, m) in mix.iter().enumerate() {
        RequestTemplate::compile(m, &names)
            .map_err(|e| bad(format!("mix[{i}].{}", e.field), e.message))?;
    }
    Ok(Plan {
        name: pf.name.unwrap_or_else(|| file.to_string()),
        model,
        think_time: pf.think_time.map(|d| d.0).unwrap_or(Duration::ZERO),
        cooldown: pf.cooldown.map(|d| d.0).unwrap_or(Duration::ZERO),
        stop_on_failure: pf.stop_on_failure.unwrap_or(true),
        timeout: pf.timeout.map(|d| d.0).unwrap_or(Duration::from_secs(30)),
        warmup,
        vars: pf.vars,
        mix,
        stages,
    })
}

/// The seed k6 script's mix: 70% send message, 30% fetch history, for the
/// seed's test user and conversation.
pub fn seed_mix() -> Vec<MixItem> {
    let seed: PlanFile = match serde_saphyr::from_str(SEED_MIX_YAML) {
        Ok(p) => p,
        Err(_) => return Vec::new(),
    };
    seed.mix
}

const SEED_MIX_YAML: &str = r#"
stages: []
mix:
  - name: send_message
    weight: 70
    request:
      method: POST
      url: "${base_url}/api/v1/chat/conversations/${pick.conversations}/messages"
      json: { userId: "${pick.users}", content: "load test message ${random}", messageType: TEXT }
  - name: fetch_history
    weight: 30
    request:
      url: "${base_url}/api/v1/chat/conversations/${pick.conversations}/messages"
      query: { userId: "${pick.users}", limit: "20" }
"#;

/// Scales every stage and the cooldown by `factor` (at least 1 s per stage).
pub fn scale(plan: &mut Plan, factor: f64) {
    for s in &mut plan.stages {
        let d = (s.duration.as_secs_f64() * factor).max(1.0);
        s.duration = Duration::from_secs_f64(d);
    }
    plan.cooldown = Duration::from_secs_f64(plan.cooldown.as_secs_f64() * factor);
    plan.think_time = Duration::from_secs_f64(plan.think_time.as_secs_f64() * factor.sqrt());
}

/// `--quick`: a smoke run of about a minute for the seed plan.
pub const QUICK_FACTOR: f64 = 1.0 / 30.0;

/// Parses `--stages`: `NAME:LOAD:DURATION[:P95_MS[:ERR_PCT]]`, comma
/// separated. LOAD is a number of virtual users (`25`), or an arrival rate
/// for the open model (`500/s`, optionally with connections: `500/s*20`).
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, String> {
    let mut out = Vec::new();
    for (i, item) in s.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let parts: Vec<&str> = item.split(':').map(str::trim).collect();
        let bad = |why: String| {
            format!(
                "stage {} `{item}`: {why} (write NAME:VUS:DURATION[:P95_MS[:ERR_PCT]], e.g. light:10:60s:120:0, or NAME:RATE/s[*CONNS]:DURATION for the open model)",
                i + 1
            )
        };
        if parts.len() < 3 || parts.len() > 5 {
            return Err(bad("expected 3 to 5 fields separated by `:`".into()));
        }
        if parts[0].is_empty() {
            return Err(bad("the name is empty".into()));
        }
        let (vus, rate) = match parts[1].split_once("/s") {
            Some((r, rest)) => {
                let rate: f64 = r
                    .parse()
                    .ok()
                    .filter(|r: &f64| r.is_finite() && *r > 0.0)
                    .ok_or_else(|| bad(format!("`{r}` is not a rate")))?;
                let conns = match rest.strip_prefix('*') {
                    Some(c) => c
                        .parse::<u32>()
                        .map_err(|_| bad(format!("`{c}` is not a number of connections")))?,
                    None if rest.is_empty() => 50,
                    None => return Err(bad(format!("unexpected `{rest}` after the rate"))),
                };
                (conns, Some(rate))
            }
            None => (
                parts[1]
                    .parse::<u32>()
                    .map_err(|_| bad(format!("`{}` is not a number of virtual users", parts[1])))?,
                None,
            ),
        };
        if vus == 0 || vus > MAX_VUS {
            return Err(bad(format!(
                "virtual users must be between 1 and {MAX_VUS}"
            )));
        }
        let duration = crate::support::duration::parse(parts[2]).map_err(bad)?;
        if duration.is_zero() {
            return Err(bad("the duration must be longer than 0s".into()));
        }
        let num = |p: Option<&&str>, what: &str| -> Result<Option<f64>, String> {
            match p {
                None => Ok(None),
                Some(&"") => Ok(None),
                Some(t) => t
                    .trim_end_matches("ms")
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .map(Some)
                    .ok_or_else(|| bad(format!("`{t}` is not a valid {what}"))),
            }
        };
        let p95_ms = num(parts.get(3), "p95 bound in ms")?;
        let max_error_pct = num(parts.get(4), "error percentage")?;
        if max_error_pct.is_some_and(|p| p > 100.0) {
            return Err(bad("the error percentage must be at most 100".into()));
        }
        out.push(Stage {
            name: parts[0].to_string(),
            vus,
            rate,
            duration,
            p95_ms,
            max_error_pct,
        });
    }
    if out.is_empty() {
        return Err("--stages needs at least one stage".into());
    }
    Ok(out)
}

/// Total planned time: the warm-up, stages and cooldowns between them.
pub fn planned(plan: &Plan) -> Duration {
    let stages: Duration = plan.stages.iter().map(|s| s.duration).sum();
    plan.warmup + stages + plan.cooldown * (plan.stages.len().saturating_sub(1) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Plan {
        let text = crate::playbook::embedded::get(crate::playbook::embedded::LOAD_PLAN)
            .expect("embedded plan");
        parse(text, "progressive-load.yaml").expect("valid")
    }

    #[test]
    fn shipped_plan_is_the_seed_table() {
        let p = shipped();
        assert_eq!(p.model, Model::Closed);
        assert_eq!(p.cooldown, Duration::from_secs(30));
        assert_eq!(p.stages.len(), 7);
        for (s, (name, vus, secs, p95, err)) in p.stages.iter().zip(SEED_STAGES) {
            assert_eq!(&s.name, name);
            assert_eq!(s.vus, *vus);
            assert_eq!(s.duration, Duration::from_secs(*secs));
            assert_eq!(s.p95_ms, Some(*p95));
            assert_eq!(s.max_error_pct, Some(*err));
        }
        let weights: Vec<(String, u32)> =
            p.mix.iter().map(|m| (m.name.clone(), m.weight)).collect();
        assert_eq!(
            weights,
            vec![("send_message".into(), 70), ("fetch_history".into(), 30)]
        );
        assert_eq!(p.warmup, DEFAULT_WARMUP);
        assert_eq!(planned(&p), Duration::from_secs(3 + 1230 + 6 * 30));
    }

    #[test]
    fn quick_scales_durations_down() {
        let mut p = shipped();
        scale(&mut p, QUICK_FACTOR);
        assert_eq!(p.stages[0].duration, Duration::from_secs(1));
        assert_eq!(p.stages[6].duration, Duration::from_secs(10));
        assert_eq!(p.cooldown, Duration::from_secs(1));
        assert!(planned(&p) < Duration::from_secs(60), "{:?}", planned(&p));
    }

    #[test]
    fn stage_list_on_the_command_line() {
        let s = parse_stages("a:5:2s:100:0, b:10:1m,c:200/s*8:3s:50:1.5").expect("valid");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].vus, 5);
        assert_eq!(s[0].p95_ms, Some(100.0));
        assert_eq!(s[0].max_error_pct, Some(0.0));
        assert_eq!(s[1].duration, Duration::from_secs(60));
        assert_eq!(s[1].p95_ms, None);
        assert_eq!(s[2].rate, Some(200.0));
        assert_eq!(s[2].vus, 8);
        assert_eq!(s[2].max_error_pct, Some(1.5));
        for bad in [
            "",
            "a:5",
            "a:0:1s",
            "a:x:1s",
            "a:5:soon",
            "a:5:0s",
            ":5:1s",
            "a:5:1s:fast",
            "a:5:1s:100:101",
            "a:9/s*x:1s",
        ] {
            assert!(parse_stages(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn bad_plans_are_located() {
        let e = parse(
            "stages:\n  - name: a\n    vus: 0\n    duration: 1s\n",
            "p.yaml",
        )
        .expect_err("vus 0");
        assert_eq!(e.path, "stages[0].vus");
        assert_eq!(e.loc.map(|l| l.line), Some(3));
        let e = parse(
            "stages:\n  - name: a\n    vu: 3\n    duration: 1s\n",
            "p.yaml",
        )
        .expect_err("typo");
        assert_eq!(e.suggestion.as_deref(), Some("vus"));
        assert_eq!(e.loc.map(|l| l.line), Some(3), "{e}");
        let e = parse(
            "model: open\nstages:\n  - {name: a, vus: 2, duration: 1s}\n",
            "p.yaml",
        )
        .expect_err("no rate");
        assert!(e.message.contains("rate"), "{e}");
        let e = parse(
            "stages: [{name: a, vus: 2, duration: 1s}]\nmix:\n  - name: x\n    request: {url: \"http://elsewhere/x\"}\n",
            "p.yaml",
        )
        .expect_err("foreign url");
        assert_eq!(e.path, "mix[0].request.url", "{e}");
        let e = parse(
            "stages: [{name: a, vus: 2, duration: 1s}]\nmix:\n  - name: x\n    request: {url: \"${base_url}/${pick.nobody}\"}\n",
            "p.yaml",
        )
        .expect_err("unknown list");
        assert!(e.message.contains("nobody"), "{e}");
        assert!(parse("stages: [", "p.yaml").is_err());
        assert!(parse("stages: []", "p.yaml").is_err());
    }

    #[test]
    fn one_model_rate_rule_for_plans_and_flags() {
        assert_eq!(check_rate(Model::Closed, None), Ok(()));
        assert_eq!(check_rate(Model::Open, Some(500.0)), Ok(()));
        assert_eq!(check_rate(Model::Open, None), Err(RateError::Missing));
        assert_eq!(
            check_rate(Model::Closed, Some(5.0)),
            Err(RateError::NotOpen)
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e7] {
            assert_eq!(check_rate(Model::Open, Some(bad)), Err(RateError::Invalid));
        }
        // The command line's wording names the flags.
        let mut p = shipped();
        p.stages = parse_stages("fixed:500/s*20:1m").expect("stages");
        assert_eq!(
            check_model(&p).map_err(|e| e.to_string()),
            Err("stage `fixed` has a rate, which needs the open model (--model open)".into())
        );
        p.model = Model::Open;
        assert_eq!(check_model(&p), Ok(()));
        p.stages = parse_stages("light:10:60s").expect("stages");
        assert_eq!(
            check_model(&p).map_err(|e| e.to_string()),
            Err("stage `light` has no rate: the open model needs RATE/s for every stage (e.g. --stages light:200/s*10:60s)".into())
        );
        // A plan file gets the same rule, located at the stage's rate.
        let e = parse(
            "stages:\n  - {name: a, vus: 2, rate: 10, duration: 1s}\n",
            "p.yaml",
        )
        .expect_err("rate without the open model");
        assert_eq!(e.path, "stages[0].rate");
        assert_eq!(e.message, RateError::NotOpen.to_string());
    }
}
