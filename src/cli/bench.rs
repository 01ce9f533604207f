//! Arguments of `twip bench`: the target, the load's shape and the request.

use std::path::PathBuf;

use clap::Args;

use super::parse;
use super::BenchTlsArgs;

#[derive(Debug, Args)]
#[command(after_long_help = "\
Examples:
  twip bench http://127.0.0.1:8080/ -n 10000 -c 50
  twip bench http://127.0.0.1/ -z 30s -c 200 --json
  twip bench http://127.0.0.1/api -p body.json -T application/json -n 1000
  twip bench production --path /news -z 10s --max-error-rate 0.1%
  twip bench https://127.0.0.1:8443/ --insecure -z 10s --busy-poll   # a server on this machine

Exit codes:
  0    the run completed
  1    no response at all (every request failed: refused, reset, timed out, ...),
       or the share of failed requests exceeded --max-error-rate
  2    invalid input (bad URL, flag, header, unknown environment); nothing was sent
  130  stopped by Ctrl-C (the report of what ran is printed)")]
pub struct BenchArgs {
    /// A URL (http://HOST[:PORT]/PATH), or an environment name (its proxy entrypoint)
    #[arg(value_name = "URL|ENV")]
    pub target: String,

    /// Number of requests to send, all connections together [default: 200 without -z]
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub requests: Option<u64>,

    /// Run for this long (10s, 1m, 500ms); requests in flight at the end are cut, not errors.
    /// With -n too, stops at whichever comes first
    #[arg(short = 'z', long = "duration", value_name = "DUR", value_parser = parse::bench_duration)]
    pub duration: Option<std::time::Duration>,

    /// Concurrent connections (one task each)
    #[arg(
        short = 'c',
        long = "connections",
        value_name = "N",
        default_value_t = 50
    )]
    pub connections: usize,

    /// Send at this fixed total rate (requests/s); latency is measured from each request's
    /// scheduled time, so a stalled server shows (no coordinated omission)
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,

    /// What to send
    #[command(flatten)]
    pub request: Box<RequestArgs>,

    /// A new connection for every request (sends `Connection: close`)
    #[arg(long)]
    pub no_keepalive: bool,

    /// Keep-alive (the default already; accepted because ab users type it)
    #[arg(short = 'k', long = "keepalive", conflicts_with = "no_keepalive")]
    pub keepalive: bool,

    /// Per-request timeout, from when a connection picks the request up, connecting
    /// included (0 for none)
    #[arg(long, value_name = "DUR", default_value = "20s", value_parser = parse::bench_duration)]
    pub timeout: std::time::Duration,

    /// The largest response head (status line and headers) accepted: bytes, or with KiB/MiB
    /// (a larger one is the error `head_too_large`)
    #[arg(long, value_name = "SIZE", default_value = "64KiB", value_parser = parse::size)]
    pub max_header_size: usize,

    /// When a reused keep-alive connection is closed without a byte of response after the
    /// request was written, send it again once on a new connection (counted as a retry).
    /// Only for GET, HEAD, PUT, DELETE, OPTIONS and TRACE; without it, such a request is the
    /// error `dropped_on_reuse`, and no request is ever sent twice
    #[arg(long)]
    pub retry_idempotent: bool,

    /// Never sleep while waiting for responses: each thread polls its sockets without
    /// blocking, and uses a whole core. For a server on the same machine, which then need not
    /// wake the client for each response and answers more (docs/bench.md); against a server
    /// elsewhere it only costs CPU
    #[arg(long)]
    pub busy_poll: bool,

    /// With keep-alive and many requests in flight on a thread (8 or more), when a poll of its
    /// sockets finds nothing, the thread sleeps this long on a timer and polls again, instead
    /// of sleeping until a response arrives: the server then need not wake the client for
    /// each response, and the thread handles the responses that came meanwhile together. A
    /// response may be read up to this late (up to 1ms; 0 to never nap; not with --rate, where
    /// each request's latency counts from its scheduled time)
    #[arg(long, value_name = "DUR", default_value = "50us", value_parser = parse::nap)]
    pub nap: std::time::Duration,

    /// The load threads' scheduling policy. `batch` (Linux's SCHED_BATCH): a thread woken by
    /// a response never preempts the program on that core, so a server on the same machine
    /// keeps its CPU (it still runs at once on an idle core); `normal`: the default policy of
    /// other programs. `--json` says which one the threads ran with
    #[arg(long, value_name = "POLICY", default_value = "batch", value_parser = ["batch", "normal"])]
    pub sched: String,

    #[command(flatten)]
    pub tls: BenchTlsArgs,

    /// Print the report as one JSON object on stdout
    #[arg(long)]
    pub json: bool,

    /// Worker threads, each running its share of the connections [default: half the
    /// cores with keep-alive (one on two cores: the server on the same machine needs the
    /// rest), all of them without (connecting is work for the client's kernel)]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Exit 1 when failed requests (errors and HTTP 4xx/5xx) exceed this share:
    /// 0.01 or 1%
    #[arg(long, value_name = "R", value_parser = parse::rate)]
    pub max_error_rate: Option<f64>,

    /// Write an SVG with the latency histogram and latency and throughput over time (with
    /// --replicas: requests/s and p99 against the replica count)
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// With ENV: the environment runs on the lab of this name (its first manager's proxy)
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,

    /// Compare layouts: the service (of ENV) to scale for --replicas
    #[arg(long, value_name = "SVC", requires = "replicas")]
    pub service: Option<String>,

    /// Compare layouts: scale --service to each count, bench each for the same duration,
    /// restore the original count, and print one table (replicas, rps, p50, p99, errors, CPU)
    #[arg(
        long,
        value_name = "N,N,..",
        value_delimiter = ',',
        requires = "service"
    )]
    pub replicas: Vec<u64>,
}

/// The options that shape the request (boxed: they are most of the size of [`BenchArgs`]).
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// HTTP method [default: GET, or POST with -d/-D]
    #[arg(short = 'm', long = "method", value_name = "METHOD")]
    pub method: Option<String>,

    /// Add a header (repeatable); replaces a default of the same name (Host, User-Agent, ...)
    #[arg(short = 'H', long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,

    /// Request body
    #[arg(
        short = 'd',
        long = "data",
        value_name = "DATA",
        conflicts_with = "data_file"
    )]
    pub data: Option<String>,

    /// Request body from a file (`-p` works too, as in ab)
    #[arg(
        short = 'D',
        long = "data-file",
        short_alias = 'p',
        value_name = "FILE"
    )]
    pub data_file: Option<PathBuf>,

    /// Content-Type of the body [default with a body: application/octet-stream]
    #[arg(short = 'T', long = "content-type", value_name = "TYPE")]
    pub content_type: Option<String>,

    /// The path to request: for an environment target [default: /]; replaces a URL's path
    #[arg(long, value_name = "P")]
    pub path: Option<String>,
}
