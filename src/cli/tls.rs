//! Arguments about TLS: `twip bench`'s certificate checks and `twip certs`.

use std::path::PathBuf;

use clap::Args;

/// How `twip bench` checks an `https://` target's certificate.
#[derive(Debug, Clone, Default, Args)]
pub struct BenchTlsArgs {
    /// https: trust only the CA certificates of this PEM file (instead of the system's roots)
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,

    /// https: do not check the server's certificate (the handshake still happens)
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: Option<CertsCommand>,

    /// The environment whose certificates to list
    #[arg(value_name = "ENV")]
    pub env: Option<String>,

    /// Print the certificates as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum CertsCommand {
    /// Renew the ACME certificate now: one round of the certificates controller, run from here
    #[command(
        after_help = "Runs the certificates controller's round from this process, holding the stack's\ndeploy lock (so it does not race `twip up`). Without --force it renews only when due\n(two thirds into the certificate's lifetime) and otherwise says until when it is not due.\nThe HTTP-01 challenge is sent by the proxy to tasks.STACK_agent:8402: it reaches this\nprocess only where that service forwards to it. While the in-cluster agent runs, it renews\non its own and this command refuses (exit 2): asking the agent to renew now is not built yet.\n\nExamples:\n  twip certs renew production             renew if due\n  twip certs renew production --force     renew now\n  twip certs renew production --json      the outcome as data\n\nExit code: 0 renewed (or not due), 1 the order failed (the old certificate keeps\nserving), 2 invalid input (no proxy.tls.acme in this environment)."
    )]
    Renew(CertsRenewArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CertsRenewArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Renew whatever is served, due or not
    #[arg(long)]
    pub force: bool,

    /// How long the order may wait for the directory's validation
    #[arg(long, value_name = "DUR", value_parser = super::parse::duration, default_value = "2m")]
    pub timeout: std::time::Duration,

    /// Print the outcome as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,

    /// Where this process's challenge listener binds (tests; default 0.0.0.0:8402)
    #[arg(long, value_name = "ADDR", hide = true)]
    pub listen: Option<String>,
}
