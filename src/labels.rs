//! Every label twip reads or writes on engine objects, in one place. Labels are twip's memory
//! in the swarm: what it made, for which project and environment, what the manifest asked for
//! and which release runs. A new label goes here, with what it means.

/// Label docker's own stack commands use; twip sets it on everything so `docker stack ls/ps/rm`
/// recognise what twip made.
pub const NAMESPACE: &str = "com.docker.stack.namespace";
/// The image a service was declared with, as docker's stack commands record it.
pub const STACK_IMAGE: &str = "com.docker.stack.image";

/// The environment an object belongs to.
pub const ENV: &str = "io.twip.environment";
/// The project an object belongs to.
pub const PROJECT: &str = "io.twip.project";
/// The manifest's name of a service.
pub const SERVICE: &str = "io.twip.service";
/// On everything twip made (`true`).
pub const MANAGED: &str = "io.twip.managed";

/// Hash of the service spec as the manifest wants it (replicas excluded).
pub const SPEC_HASH: &str = "io.twip.spec-hash";
/// The replica count the manifest asked for, so that `up` keeps a count set by `scale` or the
/// autoscaler until the manifest's count changes.
pub const MANIFEST_REPLICAS: &str = "io.twip.manifest-replicas";
/// On the proxy service: the certificate secrets the agent was asked to swap into the running
/// proxies (comma-separated names), set by `twip up` instead of a rolling update.
pub const TLS_HOT_SWAP: &str = "io.twip.tls-hot-swap";
/// The container label that names the local image a service was deployed from (no registry).
pub const IMAGE_ID: &str = "io.twip.image-id";

/// On a one-off task's service (`twip run`, a release task): what it runs for, `run` or
/// `before_deploy`. Such a service carries no stack namespace, so no plan sees it; twip
/// removes it once its task ended.
pub const ONEOFF: &str = "io.twip.oneoff";

/// On a scheduled job's template service (a service of the stack with no tasks), on its runs
/// (one-off services of kind `job`), on their claims and their records: the job's name.
pub const JOB: &str = "io.twip.job";
/// On a job's runs, claims and records: the stack they belong to (runs, claims and records
/// carry no stack namespace, so no plan removes them; `twip down` does).
pub const JOB_STACK: &str = "io.twip.job.stack";
/// On a job's runs, claims and records: the time slot the run is for (`2026-12-01T10:15:00Z`,
/// or `manual-<time>` for `twip jobs run`).
pub const JOB_SLOT: &str = "io.twip.job.slot";
/// On a job's claims: `claim`; on its records: `record` (the end of a run).
pub const JOB_KIND: &str = "io.twip.job.kind";
/// On a job's records: `succeeded`, `failed`, `timed out`, `skipped`, `replaced`.
pub const JOB_STATUS: &str = "io.twip.job.status";
/// On a job's records: the run's exit code (absent when it had none).
pub const JOB_EXIT: &str = "io.twip.job.exit";
/// On a job's runs and records: when the run started (RFC 3339, UTC).
pub const JOB_STARTED: &str = "io.twip.job.started";
/// On a job's records: how long the run took, in milliseconds.
pub const JOB_DURATION_MS: &str = "io.twip.job.duration-ms";

/// On the configs that hold a stack's releases: the release's sequence number.
pub const RELEASE: &str = "io.twip.release";

/// On a stack's deploy lock (a config named `twip-lock-STACK`): the stack it locks.
pub const LOCK: &str = "io.twip.lock";
/// On a deploy lock: who holds it (`user@host`).
pub const LOCK_HOLDER: &str = "io.twip.lock.holder";
/// On a deploy lock: the command that took it.
pub const LOCK_COMMAND: &str = "io.twip.lock.command";

/// Label on everything a lab made: its name.
pub const LAB: &str = "io.twip.lab";
/// Label on a lab's node containers: `manager` or `worker`.
pub const LAB_ROLE: &str = "io.twip.lab.role";
/// Label on a lab's node containers: the position in the lab (0, 1, ...), managers first.
pub const LAB_INDEX: &str = "io.twip.lab.index";
/// Label on the secrets of `proxy.tls.acme` certificates: `placeholder` (made by `twip up`
/// until one is obtained) or `issued` (by the ACME directory).
pub const ACME_CERT: &str = "io.twip.acme";
/// Label on an issued ACME certificate's secret: its DNS names, joined with `,`.
pub const ACME_DOMAINS: &str = "io.twip.acme.domains";
/// Label on an issued ACME certificate's secret: its validity, Unix seconds.
pub const ACME_NOT_BEFORE: &str = "io.twip.acme.not-before";
pub const ACME_NOT_AFTER: &str = "io.twip.acme.not-after";
/// Label on an issued ACME certificate's secret: its serial number (hex) and issuer.
pub const ACME_SERIAL: &str = "io.twip.acme.serial";
pub const ACME_ISSUER: &str = "io.twip.acme.issuer";
/// Label on the secret that holds the ACME account's credentials: the directory URL.
pub const ACME_ACCOUNT: &str = "io.twip.acme.account";
/// On the proxy SERVICE (not its tasks, so setting it restarts nothing): the name of the ACME
/// certificate's secret the agent swapped into the running proxies. The proxy's tasks may
/// still mount an older one; the agent swaps the served one into every task.
pub const ACME_SERVED: &str = "io.twip.acme.served";

/// On the in-cluster agent's service and containers (`true`).
pub const AGENT: &str = "io.twip.agent";
/// On a config that holds a controller's last decision (written by the agent): the
/// controller's name. One per controller; older ones are removed as a new one is written.
pub const RECORD: &str = "io.twip.record";
/// On a request to the agent (a config written by `twip certs renew` while an agent runs):
/// the controller asked. At most one pending per controller; the agent removes it once answered.
pub const REQUEST: &str = "io.twip.request";
/// On a request to the agent: its id, which the record of the round that answers it carries.
pub const REQUEST_ID: &str = "io.twip.request.id";
