//! "Did you mean ...?" for a misspelt name among the known ones: one matcher for the manifest
//! loader, the CLI's service, node and environment names, and platforms.

/// The known name most like `name` (Jaro-Winkler above 0.8), if any.
pub fn suggest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(&str, f64)> = None;
    for k in known {
        let score = strsim::jaro_winkler(name, k);
        if score > 0.8 && best.is_none_or(|(_, s)| score > s) {
            best = Some((k, score));
        }
    }
    best.map(|(k, _)| k)
}

/// The closest of `known` to a mistyped `name`: [`suggest`]'s, else one at most two edits
/// away (`wbe` → `web`).
pub fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    suggest(name, known.iter().copied()).or_else(|| {
        known
            .iter()
            .map(|k| (strsim::osa_distance(name, k), *k))
            .filter(|(d, k)| *d <= 2 && *d < k.len().max(name.len()))
            .min()
            .map(|(_, k)| k)
    })
}

/// `; did you mean `x`?` after a message's clause, or nothing.
pub fn hint(name: &str, known: &[&str]) -> String {
    closest(name, known)
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default()
}

/// The message for a service name the environment does not have, as `scale`, `update`, `logs`
/// and `exec` print it: `ENV: no service `x` (did you mean `y`?); services: a, b`.
pub fn no_service(env: &str, name: &str, known: &[&str]) -> String {
    let hint = suggest(name, known.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    format!(
        "{env}: no service `{name}`{hint}; services: {}",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_close_names() {
        assert_eq!(suggest("imag", ["image", "replicas"]), Some("image"));
        assert_eq!(suggest("replica", ["image", "replicas"]), Some("replicas"));
        assert_eq!(suggest("zzz", ["image", "replicas"]), None);
    }

    #[test]
    fn closest_falls_back_to_edit_distance() {
        assert_eq!(closest("wbe", &["web", "db"]), Some("web"));
        assert_eq!(closest("zz", &["web", "db"]), None);
        assert_eq!(hint("wbe", &["web"]), "; did you mean `web`?");
        assert_eq!(hint("zzzz", &["web"]), "");
    }

    #[test]
    fn no_service_names_the_known_ones() {
        assert_eq!(
            no_service("prod", "wbe", &["web", "db"]),
            "prod: no service `wbe`; services: web, db"
        );
        assert_eq!(
            no_service("prod", "webb", &["web", "db"]),
            "prod: no service `webb` (did you mean `web`?); services: web, db"
        );
    }
}
