//! Playbooks and check files shipped inside the binary, so `chatops doctor`
//! works from any directory. The same files live in `playbooks/` and `checks/`.

pub static FILES: &[(&str, &str)] = &[
    (
        "playbooks/pre-load-test.yaml",
        include_str!("../playbooks/pre-load-test.yaml"),
    ),
    (
        "playbooks/progressive-load.yaml",
        include_str!("../playbooks/progressive-load.yaml"),
    ),
    (
        "checks/pg-ready.yaml",
        include_str!("../checks/pg-ready.yaml"),
    ),
    (
        "checks/pg-connect.yaml",
        include_str!("../checks/pg-connect.yaml"),
    ),
    (
        "checks/backend-listening.yaml",
        include_str!("../checks/backend-listening.yaml"),
    ),
    ("checks/health.yaml", include_str!("../checks/health.yaml")),
    (
        "checks/backend-env.yaml",
        include_str!("../checks/backend-env.yaml"),
    ),
    (
        "checks/rate-limit-env.yaml",
        include_str!("../checks/rate-limit-env.yaml"),
    ),
    (
        "checks/send-message.yaml",
        include_str!("../checks/send-message.yaml"),
    ),
    (
        "checks/fetch-history.yaml",
        include_str!("../checks/fetch-history.yaml"),
    ),
];

/// The seed's progressive load plan (`chatops load`).
pub const LOAD_PLAN: &str = "playbooks/progressive-load.yaml";

pub const DEFAULT_PLAYBOOK: &str = "playbooks/pre-load-test.yaml";

pub fn get(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}
