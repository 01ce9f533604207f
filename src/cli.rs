//! The command line: one `Command` enum, one `*Args` struct per command, dispatched in `lib.rs`.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::ui::Ui;

mod bench;
mod exec;
mod jobs;
mod lock;
pub mod parse;
mod run;
mod shortcuts;
mod tls;

pub use bench::{BenchArgs, RequestArgs};
pub use exec::ExecArgs;
pub use jobs::{JobsArgs, JobsCommand, JobsRunArgs};

pub use lock::{DeployArgs, HistoryArgs, LockArgs, LockCommand, RollbackArgs};
pub use run::RunArgs;
pub use shortcuts::expand_shortcuts;
pub use tls::{BenchTlsArgs, CertsArgs, CertsCommand, CertsRenewArgs};

/// The top-level after-help: shortcuts, examples and the exit-code table
/// (kept equal to [`crate::exit::EXIT_CODES_HELP`] by a test).
pub const AFTER_HELP: &str = "\
Environment shortcuts:
  twip train CMD ...   is   twip CMD training ...
  twip prod CMD ...    is   twip CMD production ...

Examples:
  twip init myproject          scaffold a project that validates and renders as created
  twip validate                check every manifest in environments/
  twip render training -o -    print the training stack file
  twip train up                deploy the training environment and wait until it runs
  twip status --json           nodes and services as JSON

Exit codes:
  0  success
  1  failure (engine, network, a subprocess, a failed check)
  2  invalid input: usage error or invalid manifest; nothing was changed
  3  timed out waiting for the swarm to converge
  4  an update failed and was rolled back
  5  an update was paused by swarm
  6  the stack is locked by another operator (twip lock status); nothing was changed
 70  internal error: a bug in twip (one line says where to report it)
130  interrupted (Ctrl-C); a deploy lock held was released";

#[derive(Debug, Parser)]
#[command(
    name = "twip",
    version,
    about = "Turn a folder of environment manifests into running Docker Swarm stacks",
    long_about = "twip reads environments/NAME.yaml, renders a stack, a proxy (HAProxy) and monitoring \
                  configs from templates, and deploys, scales, updates and measures them on Docker Swarm.",
    after_help = AFTER_HELP,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// The project directory (holds environments/); default: the nearest one above the current directory
    #[arg(long, global = true, value_name = "DIR", env = "TWIP_PROJECT_DIR")]
    pub project_dir: Option<PathBuf>,

    /// Docker engine to talk to (unix://, tcp://, ssh://); overrides the manifest's engine
    #[arg(long, global = true, value_name = "URL", env = "TWIP_HOST")]
    pub host: Option<String>,

    /// More detail on stderr (repeat for more); errors show their full cause chain
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// No colour (also when NO_COLOR is set or output is not a terminal)
    #[arg(long, global = true)]
    pub no_color: bool,
}

impl From<&GlobalArgs> for Ui {
    /// The UI the global options ask for (`-v`, `-q`, `--no-color`).
    fn from(g: &GlobalArgs) -> Self {
        Ui::new(g.verbose, g.quiet, g.no_color)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a new project: an environment, a template and a Dockerfile
    #[command(after_help = "Examples:\n  twip init\n  twip init ./shop --name shop")]
    Init(InitArgs),

    /// Check manifests and report every problem with file, line and column
    #[command(
        after_help = "Examples:\n  twip validate                 every environment\n  twip validate production      one environment\n  twip validate --json          machine-readable diagnostics"
    )]
    Validate(ValidateArgs),

    /// Render the stack file, the HAProxy and the monitoring configs of an environment
    #[command(
        after_help = "Examples:\n  twip render training              writes build/training/\n  twip render training -o -         prints the stack file\n  twip render production --check    exit 1 when build/production/ is stale"
    )]
    Render(RenderArgs),

    /// Print the JSON Schema (draft-07) of the manifest, for editors and linters
    #[command(
        after_help = "Examples:\n  twip schema > twip.schema.json\n  # then, first line of a manifest:\n  # yaml-language-server: $schema=../twip.schema.json"
    )]
    Schema,

    /// Show what `up` would change, with the cause of each action, without changing anything
    #[command(after_help = "Examples:\n  twip plan training\n  twip plan production --json")]
    Plan(PlanArgs),

    /// Build the environment's images with docker buildx
    #[command(
        after_help = "Examples:\n  twip build training\n  twip build scaled --push\n  twip build scaled --service web --platform linux/arm64"
    )]
    Build(BuildArgs),

    /// Tag and push the environment's built images to its registry
    #[command(
        visible_alias = "pack",
        after_help = "Examples:\n  twip push production"
    )]
    Push(EnvArg),

    /// Images: deliver them to nodes without a registry
    #[command(subcommand)]
    Images(ImagesCommand),

    /// Deploy an environment and wait until the swarm converges
    #[command(
        after_help = "Examples:\n  twip up training\n  twip prod up --timeout 5m\n  twip up scaled --detach"
    )]
    Up(UpArgs),

    /// Remove what `up` made (volumes only with --volumes) and wait until it is gone
    #[command(after_help = "Examples:\n  twip down training\n  twip down training --volumes")]
    Down(DownArgs),

    /// Set replica counts and converge through the same path as `up`
    #[command(
        after_help = "Examples:\n  twip scale training web=3\n  twip scale production web=4 static=2"
    )]
    Scale(ScaleArgs),

    /// Roll out new images (a rolling update per the manifest's update config)
    #[command(
        after_help = "Examples:\n  twip update production\n  twip update production web --image localhost:5000/twip/web:2"
    )]
    Update(UpdateArgs),

    /// Return services to an earlier release (the previous one, or --to N)
    #[command(
        after_help = "Examples:\n  twip rollback production\n  twip rollback production web\n  twip rollback production --to 12"
    )]
    Rollback(RollbackArgs),

    /// The stack's releases: who changed what, when, and how it ended
    #[command(
        after_help = "Examples:\n  twip history production\n  twip history production 12\n  twip history production --json"
    )]
    History(HistoryArgs),

    /// The stack's deploy lock: status, acquire, release
    #[command(subcommand)]
    Lock(LockCommand),

    /// Nodes, services and failing tasks
    #[command(
        after_help = "Examples:\n  twip status\n  twip status training --json\n  twip status --watch"
    )]
    Status(StatusArgs),

    /// A service's logs, each line prefixed with its task
    #[command(
        after_help = "Examples:\n  twip logs training web\n  twip logs training web -f --tail 20"
    )]
    Logs(LogsArgs),

    /// Run a command in a running task of a service, on whichever node holds it
    #[command(
        after_help = "Examples:\n  twip exec production web -- ls /app\n  twip exec production web -it -- sh\n  twip exec production web --task 2 -- cat /etc/hostname\n  twip exec scaled web --all -- uptime\n  echo 'print(6*7)' | twip exec production web -i -- python3\n\nExit code: the command's (126/127: it could not be run / was not found)."
    )]
    Exec(ExecArgs),

    /// Run a command once in a new task made from a service's spec, then remove the task
    #[command(
        after_help = "Examples:\n  twip run production web -- python manage.py migrate\n  twip run training web --timeout 10m -- sh -c 'ls /data'\n\nThe task runs the environment's desired spec (as `twip up` would deploy it), with\nthe command replaced and no published ports; twip's exit code is the command's."
    )]
    Run(RunArgs),

    /// Scheduled jobs: each job, its schedule (UTC), next run and last runs; `run` runs one now
    #[command(
        after_help = "Examples:\n  twip jobs production\n  twip jobs production --json\n  twip jobs run production report"
    )]
    Jobs(JobsArgs),

    /// Smoke test: requests through the environment's entrypoint
    #[command(
        after_help = "Examples:\n  twip test training\n  twip test training / /styles/site.css"
    )]
    Test(TestArgs),

    /// HTTP load generator with ab/hey-style reports
    #[command(
        after_help = "Examples:\n  twip bench http://127.0.0.1:8080/ -n 10000 -c 50\n  twip bench http://127.0.0.1/ -z 30s -c 200 --json\n  twip bench production --path /news -z 10s\n  twip bench https://news.example.com/ --cacert ca.pem -z 10s"
    )]
    Bench(BenchArgs),
    /// The proxy's TLS certificates: names, issuer, validity, where each comes from
    #[command(
        after_help = "Examples:\n  twip certs production          names, issuer, expiry (days left), source\n  twip certs production --json   the same as data\n  twip certs renew production --force   renew the ACME certificate now"
    )]
    Certs(CertsArgs),

    /// Remove exited containers, dangling images, unused networks, old agent images and build cache made by twip
    #[command(
        after_help = "Old agent images are `twip-agent` images built by other twip binaries (every new binary\nbuilds its own) that no container uses; with ENV, only that environment's repository.\n\nExamples:\n  twip clean --dry-run\n  twip clean training\n  twip clean --all -y"
    )]
    Clean(CleanArgs),

    /// Swarm membership: init, join, nodes, leave
    #[command(subcommand)]
    Swarm(SwarmCommand),

    /// Make fresh Ubuntu/Debian hosts into swarm nodes over SSH
    #[command(
        after_help = "Examples:\n  twip bootstrap scaled\n  twip bootstrap scaled 10.0.0.12\n  twip bootstrap scaled --print > bootstrap.sh"
    )]
    Bootstrap(BootstrapArgs),

    /// A local multi-node swarm of docker-in-docker nodes
    #[command(subcommand)]
    Lab(LabCommand),

    /// Scale services by the manifest's autoscale policies
    #[command(
        after_help = "Examples:\n  twip autoscale scaled --once --dry-run\n  twip autoscale scaled --interval 10s\n  twip autoscale scaled --lab lab --json"
    )]
    Autoscale(AutoscaleArgs),

    /// Print a shell completion script
    #[command(
        after_help = "Examples:\n  twip completions bash > /etc/bash_completion.d/twip\n  twip completions zsh > \"${fpath[1]}/_twip\"\n  twip completions fish > ~/.config/fish/completions/twip.fish"
    )]
    Completions(CompletionsArgs),

    /// Print the command reference (docs/commands.md) as Markdown
    #[command(hide = true)]
    DocsCommands,

    /// The in-cluster agent: runs the environment's controllers (the stack's `agent` service
    /// runs it; not for a terminal)
    #[command(hide = true)]
    Agent(AgentArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to create the project (created if missing)
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Project name used for image names (default: the directory's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite files that already exist
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Environments to check (default: all in environments/)
    #[arg(value_name = "ENV")]
    pub envs: Vec<String>,
    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Output directory, or - to print the stack file (default: build/ENV)
    #[arg(short, long, value_name = "DIR|-")]
    pub output: Option<String>,
    /// Do not write; exit 1 when the files on disk differ from what would be rendered
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct EnvArg {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Print the plan as JSON
    #[arg(long)]
    pub json: bool,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Only this service's image (repeatable)
    #[arg(long = "service", value_name = "S")]
    pub services: Vec<String>,
    /// Platforms to build, comma separated (default: the manifest's)
    #[arg(long, value_name = "P,..", value_delimiter = ',')]
    pub platform: Vec<String>,
    /// Push to the manifest's registry (required for several platforms)
    #[arg(long)]
    pub push: bool,
    /// Build without cache
    #[arg(long)]
    pub no_cache: bool,
    /// Do not run the project's hooks/pre-build
    #[arg(long)]
    pub no_hooks: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Stream images from the local engine into each node's engine (skips nodes that have them)
    #[command(
        after_help = "Examples:\n  twip images load scaled\n  twip images load scaled --node worker-1"
    )]
    Load(ImagesLoadArgs),
}

#[derive(Debug, Args)]
pub struct ImagesLoadArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Only this node (repeatable)
    #[arg(long = "node", value_name = "N")]
    pub nodes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Return once the plan is executed, without waiting for convergence
    #[arg(short, long)]
    pub detach: bool,
    /// How long to wait for convergence (e.g. 90s, 5m)
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse::duration)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Also remove the environment's named volumes (their data is lost)
    #[arg(long)]
    pub volumes: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Replica counts, e.g. web=3
    #[arg(value_name = "SVC=N", required = true, value_parser = parse::scale)]
    pub scales: Vec<(String, u64)>,
    /// How long to wait for convergence
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse::duration)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Only this service (default: every service whose image twip builds)
    #[arg(value_name = "SVC")]
    pub service: Option<String>,
    /// The image to roll out to SVC (default: the manifest's, rolled again so rebuilt images
    /// with the same tag are picked up). A later `up` returns to the manifest's image.
    #[arg(long, value_name = "REF", requires = "service")]
    pub image: Option<String>,
    /// How long to wait for the rollout
    #[arg(long, value_name = "DUR", default_value = "10m", value_parser = parse::duration)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub deploy: DeployArgs,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment's services
    #[arg(value_name = "ENV")]
    pub env: Option<String>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    /// Refresh until interrupted
    #[arg(short, long)]
    pub watch: bool,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's config (JSON), instead of the one the stack mounts (/run/twip/agent.json)
    #[arg(long, value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// The service
    #[arg(value_name = "SVC")]
    pub service: String,
    /// Follow new lines
    #[arg(short, long)]
    pub follow: bool,
    /// Lines from the end of each task's log
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Paths to request (default: each proxy route)
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Only what this environment made
    #[arg(value_name = "ENV")]
    pub env: Option<String>,
    /// Everything unused on the engine, not only what twip made (asks first)
    #[arg(long)]
    pub all: bool,
    /// List what would be removed and remove nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum SwarmCommand {
    /// Initialise the swarm on the environment's first manager
    #[command(after_help = "Examples:\n  twip swarm init scaled")]
    Init(EnvArg),
    /// Join every node the manifest lists (managers first), apply labels, wait until Ready
    #[command(
        after_help = "Examples:\n  twip swarm join scaled\n  twip swarm join scaled --lab lab\n  twip swarm join ha --force   # an even number of managers, knowingly"
    )]
    Join(SwarmJoinArgs),
    /// Show the swarm's nodes
    #[command(
        visible_alias = "status",
        after_help = "Examples:\n  twip swarm nodes scaled --json"
    )]
    Nodes(SwarmNodesArgs),
    /// Drain a node (a manager is demoted first), wait for its tasks to move, then remove it
    #[command(
        after_help = "Examples:\n  twip swarm leave scaled --node worker-2\n  twip swarm leave ha --node manager-3"
    )]
    Leave(SwarmLeaveArgs),
}

#[derive(Debug, Args)]
pub struct SwarmNodesArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct SwarmJoinArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// How long to wait until every node is Ready
    #[arg(long, value_name = "DUR", default_value = "2m", value_parser = parse::duration)]
    pub timeout: std::time::Duration,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
    /// Join an even number of managers anyway (it tolerates no more failures than one fewer)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SwarmLeaveArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// The node to remove (default: every node of the manifest but the first manager)
    #[arg(long, value_name = "N")]
    pub node: Option<String>,
    /// How long to wait for the node's tasks to move
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse::duration)]
    pub timeout: std::time::Duration,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
    /// Remove a manager even when the swarm would lose quorum
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// Only these hosts (default: every node of the manifest)
    #[arg(value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Print the bootstrap script instead of running it
    #[arg(long, conflicts_with = "cloud_init")]
    pub print: bool,
    /// Print cloud-init user-data instead of running it
    #[arg(long)]
    pub cloud_init: bool,
    /// Put a join token in the printed script or user-data, so the host joins by itself (read
    /// from the manager; the output is then a secret). Only with --print or --cloud-init
    #[arg(long)]
    pub join_token: bool,
    /// How long to wait until the bootstrapped nodes are Ready
    #[arg(long, value_name = "DUR", default_value = "2m", value_parser = parse::duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start a local swarm of docker-in-docker nodes
    #[command(after_help = "Examples:\n  twip lab up --nodes 3\n  twip up scaled --lab lab")]
    Up(LabUpArgs),
    /// Remove the lab: its containers, network and volumes
    #[command(after_help = "Examples:\n  twip lab down")]
    Down(LabNameArgs),
    /// Show the lab's nodes
    #[command(after_help = "Examples:\n  twip lab status --json")]
    Status(LabNameArgs),
}

#[derive(Debug, Args)]
pub struct LabUpArgs {
    /// Number of nodes
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Number of managers among them
    #[arg(long, default_value_t = 1)]
    pub managers: u32,
    /// Name of the lab
    #[arg(long, default_value = "lab")]
    pub name: String,
    /// Keep what was made when `up` fails
    #[arg(long)]
    pub retain: bool,
}

#[derive(Debug, Args)]
pub struct LabNameArgs {
    /// Name of the lab
    #[arg(long, default_value = "lab")]
    pub name: String,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AutoscaleArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,
    /// One evaluation, then exit
    #[arg(long)]
    pub once: bool,
    /// Log decisions without acting
    #[arg(long)]
    pub dry_run: bool,
    /// Time between evaluations
    #[arg(long, value_name = "DUR", default_value = "15s", value_parser = parse::duration)]
    pub interval: std::time::Duration,
    /// Print each decision as a JSON line on stdout
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_help_carries_the_exit_code_table() {
        assert!(AFTER_HELP.ends_with(crate::exit::EXIT_CODES_HELP));
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
