//! Playbooks and check files shipped inside the binary, so `chatops doctor`
//! works from any directory. The same files live in `playbooks/` and `checks/`.

pub static FILES: &[(&str, &str)] = &[
    (
        "playbooks/pre-load-test.yaml",
        include_str!("../../playbooks/pre-load-test.yaml"),
    ),
    (
        "playbooks/database.yaml",
        include_str!("../../playbooks/database.yaml"),
    ),
    (
        "checks/pg-activity.yaml",
        include_str!("../../checks/pg-activity.yaml"),
    ),
    (
        "checks/pool-headroom.yaml",
        include_str!("../../checks/pool-headroom.yaml"),
    ),
    (
        "checks/schema.yaml",
        include_str!("../../checks/schema.yaml"),
    ),
    (
        "playbooks/progressive-load.yaml",
        include_str!("../../playbooks/progressive-load.yaml"),
    ),
    (
        "checks/pg-ready.yaml",
        include_str!("../../checks/pg-ready.yaml"),
    ),
    (
        "checks/pg-connect.yaml",
        include_str!("../../checks/pg-connect.yaml"),
    ),
    (
        "checks/backend-listening.yaml",
        include_str!("../../checks/backend-listening.yaml"),
    ),
    (
        "checks/health.yaml",
        include_str!("../../checks/health.yaml"),
    ),
    (
        "checks/backend-env.yaml",
        include_str!("../../checks/backend-env.yaml"),
    ),
    (
        "checks/rate-limit-env.yaml",
        include_str!("../../checks/rate-limit-env.yaml"),
    ),
    (
        "checks/rate-limit-burst.yaml",
        include_str!("../../checks/rate-limit-burst.yaml"),
    ),
    (
        "checks/backend-log.yaml",
        include_str!("../../checks/backend-log.yaml"),
    ),
    (
        "checks/stability.yaml",
        include_str!("../../checks/stability.yaml"),
    ),
    (
        "checks/message-persisted.yaml",
        include_str!("../../checks/message-persisted.yaml"),
    ),
    (
        "checks/send-message.yaml",
        include_str!("../../checks/send-message.yaml"),
    ),
    (
        "checks/fetch-history.yaml",
        include_str!("../../checks/fetch-history.yaml"),
    ),
    (
        "checks/prisma-schema.yaml",
        include_str!("../../checks/prisma-schema.yaml"),
    ),
    (
        "checks/migrations.yaml",
        include_str!("../../checks/migrations.yaml"),
    ),
    (
        "checks/build-freshness.yaml",
        include_str!("../../checks/build-freshness.yaml"),
    ),
    (
        "checks/env-file.yaml",
        include_str!("../../checks/env-file.yaml"),
    ),
];

/// The seed's progressive load plan (`chatops load`).
pub const LOAD_PLAN: &str = "playbooks/progressive-load.yaml";

pub const DEFAULT_PLAYBOOK: &str = "playbooks/pre-load-test.yaml";

pub fn get(path: &str) -> Option<&'static str> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}

#[cfg(test)]
mod tests {
    /// Every shipped YAML file is embedded, and nothing else.
    #[test]
    fn embeds_every_shipped_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = Vec::new();
        for dir in ["checks", "playbooks"] {
            for e in std::fs::read_dir(root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".yaml") {
                    on_disk.push(format!("{dir}/{name}"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = super::FILES.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
