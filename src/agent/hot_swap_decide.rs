//! The hot-swap controller's decision, pure: which certificate of which proxy task to replace,
//! from what each task serves (its runtime API's `show ssl cert`) and what is desired (the
//! files the agent mounts).

use std::collections::BTreeMap;

/// What one proxy task was seen serving: for each certificate file of its config, the serial
/// it holds (`None` when the API did not show one), or why the task could not be asked.
pub type Observed = Result<BTreeMap<String, Option<String>>, String>;

/// One swap to make: put the desired certificate of `file` into the proxy at `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub target: String,
    pub file: String,
}

/// What a round decides.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub swaps: Vec<Swap>,
    /// Tasks that serve every desired certificate already.
    pub current: usize,
    /// Tasks that could not be asked, with why (tried again next round).
    pub unreachable: Vec<(String, String)>,
}

/// The swaps that make every observed task serve `desired` (file -> serial), in the order of
/// the targets then the files.
pub fn decide(
    desired: &BTreeMap<String, String>,
    observed: &BTreeMap<String, Observed>,
) -> Decision {
    let mut d = Decision::default();
    for (target, seen) in observed {
        match seen {
            Err(e) => d.unreachable.push((target.clone(), e.clone())),
            Ok(files) => {
                let before = d.swaps.len();
                for (file, serial) in desired {
                    let served = files.get(file).cloned().flatten();
                    if served.as_deref() != Some(serial.as_str()) {
                        d.swaps.push(Swap {
                            target: target.clone(),
                            file: file.clone(),
                        });
                    }
                }
                if d.swaps.len() == before {
                    d.current += 1;
                }
            }
        }
    }
    d
}

/// One line for `twip status` and the agent's log.
pub fn summary(d: &Decision, done: usize) -> String {
    let tasks = d.current + d.unreachable.len() + {
        let mut t: Vec<&str> = d.swaps.iter().map(|s| s.target.as_str()).collect();
        t.dedup();
        t.len()
    };
    let mut s = if d.swaps.is_empty() {
        format!(
            "certificates current on {} of {tasks} proxy task(s)",
            d.current
        )
    } else {
        format!(
            "swapped {done} of {} certificate(s) live on {tasks} proxy task(s)",
            d.swaps.len()
        )
    };
    if !d.unreachable.is_empty() {
        s.push_str(&format!("; {} unreachable", d.unreachable.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn seen(pairs: &[(&str, Option<&str>)]) -> Observed {
        Ok(pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.map(str::to_string)))
            .collect())
    }

    #[test]
    fn only_stale_certificates_of_reachable_tasks_are_swapped() {
        let desired = map(&[
            ("/run/secrets/tls-0.pem", "0A"),
            ("/run/secrets/tls-1.pem", "0B"),
        ]);
        let mut observed = BTreeMap::new();
        observed.insert(
            "10.0.0.2:9443".to_string(),
            seen(&[
                ("/run/secrets/tls-0.pem", Some("0A")),
                ("/run/secrets/tls-1.pem", Some("01")),
            ]),
        );
        observed.insert(
            "10.0.0.3:9443".to_string(),
            seen(&[
                ("/run/secrets/tls-0.pem", Some("0A")),
                ("/run/secrets/tls-1.pem", Some("0B")),
            ]),
        );
        observed.insert("10.0.0.4:9443".to_string(), Err("refused".into()));
        observed.insert(
            "10.0.0.5:9443".to_string(),
            seen(&[("/run/secrets/tls-0.pem", None)]),
        );
        let d = decide(&desired, &observed);
        assert_eq!(
            d.swaps,
            vec![
                Swap {
                    target: "10.0.0.2:9443".into(),
                    file: "/run/secrets/tls-1.pem".into()
                },
                Swap {
                    target: "10.0.0.5:9443".into(),
                    file: "/run/secrets/tls-0.pem".into()
                },
                Swap {
                    target: "10.0.0.5:9443".into(),
                    file: "/run/secrets/tls-1.pem".into()
                },
            ]
        );
        assert_eq!(d.current, 1);
        assert_eq!(d.unreachable.len(), 1);
        assert_eq!(
            summary(&d, 3),
            "swapped 3 of 3 certificate(s) live on 4 proxy task(s); 1 unreachable"
        );
    }

    #[test]
    fn nothing_to_do_when_every_task_is_current() {
        let desired = map(&[("/a.pem", "01")]);
        let mut observed = BTreeMap::new();
        observed.insert("t1".to_string(), seen(&[("/a.pem", Some("01"))]));
        let d = decide(&desired, &observed);
        assert!(d.swaps.is_empty());
        assert_eq!(
            summary(&d, 0),
            "certificates current on 1 of 1 proxy task(s)"
        );
    }
}
