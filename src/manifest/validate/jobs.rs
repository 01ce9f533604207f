//! Scheduled jobs: their names, schedules, images and the objects they name.

use super::images::check_image_ref;
use super::services::check_service_references;
use super::*;

pub(super) fn check_jobs(m: &Manifest, c: &mut Checker) {
    for (n, j) in &m.jobs {
        let n = n.as_str();
        if let Err(rule) = names::service_name(n) {
            c.err(
                &["jobs", n],
                format!("`{n}` is not a valid job name: {rule}"),
            );
        }
        if n == AGENT_SERVICE && agent_runs(m) {
            c.err(
                &["jobs", n],
                format!(
                    "`{n}` is the name of the service twip adds for its in-cluster agent, \
                     which runs this environment's jobs; rename the job"
                ),
            );
        } else if m.services.contains_key(n) || added_services(m).contains(&n) {
            c.err(
                &["jobs", n],
                format!(
                    "`{n}` is also the name of a service; a job's template is a service of the \
                     stack, so rename one of them"
                ),
            );
        }
        if let Err(e) = parse_schedule(&j.schedule) {
            c.err(&["jobs", n, "schedule"], e);
        }
        if j.timeout.is_some_and(|t| t.0.is_zero()) {
            c.err(&["jobs", n, "timeout"], "must be more than 0s");
        }
        check_image_ref(m, &j.image, &["jobs", n, "image"], c);
        check_service_references(m, "jobs", n, &j.service(), c);
    }
}
