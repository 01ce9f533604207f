//! examples/vote: the voting app (frontend + queue per node, workers, one Postgres), on a
//! single-node swarm and on a 3-node lab. The promise it keeps: every vote a frontend accepted
//! (answered 201) is counted exactly once, also when a worker is killed with a batch in hand
//! and when a frontend node leaves the swarm. The checker compares what `twip bench --json`
//! saw accepted with the rows in Postgres; negative controls (a worker that acknowledges
//! before it commits, one that counts replays) show that the checker sees losses and doubles.
//!
//! Ports: free ones, or TWIP_TEST_HTTP_PORT / TWIP_TEST_STATS_PORT (see tests/common). Stacks
//! are `twiptest<run id>_vote_*`, images `twiptest<run id>vote/*`, labs `t<pid>v`; all removed
//! when a test ends, and nothing of another run.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::sync::Mutex;
use std::time::Duration;

use common::lab::TestLab;
use common::*;

/// One stack at a time: they share the images and the test ports.
static SERIAL: Mutex<()> = Mutex::new(());

/// The project (image prefix) of this run's copies.
fn project() -> String {
    format!("twiptest{}vote", run_id())
}

/// A copy of examples/vote laid out as in the repository (so `../../images/proxy` resolves),
/// with a test stack name and image namespace. Removes its stacks and images when dropped.
struct VoteProject {
    root: tempfile::TempDir,
    stack: String,
}

impl VoteProject {
    fn new(env: &str) -> VoteProject {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("examples/vote");
        std::fs::create_dir_all(dir.join("environments")).unwrap();
        copy_dir(&repo().join("images"), &root.path().join("images"));
        copy_dir(&repo().join("examples/vote/images"), &dir.join("images"));
        let stack = test_stack(&format!("vote_{env}"));
        for e in ["single", "cluster"] {
            let text = std::fs::read_to_string(
                repo().join(format!("examples/vote/environments/{e}.yaml")),
            )
            .unwrap();
            let text = text.replace("\nproject: vote\n", &format!("\nproject: {}\n", project()));
            std::fs::write(
                dir.join(format!("environments/{e}.yaml")),
                format!(
                    "{text}\nstack: {stack}\nallow_paths_outside_project: [\"{}\"]\n",
                    root.path().join("images").display()
                ),
            )
            .unwrap();
        }
        VoteProject { root, stack }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("examples/vote")
    }

    /// `twip ARGS` run from the project's own directory, with the test's variables.
    fn twip(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = twip();
        cmd.current_dir(self.dir()).args(args);
        for (k, v) in test_vars() {
            cmd.env(k, v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.timeout(Duration::from_secs(900));
        cmd.output().unwrap()
    }
}

impl Drop for VoteProject {
    fn drop(&mut self) {
        remove_stacks(std::slice::from_ref(&self.stack));
        let images = list(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &format!("reference={}/*", project()),
        ]);
        if !images.is_empty() {
            docker(&["rmi", "-f"]).args(&images).output().ok();
        }
    }
}

/// The swarm, and the offline base images the example builds from (scripts/engine-up.sh makes
/// them). Fails, rather than skips, when they are missing.
fn require(images: &[&str]) {
    require_swarm();
    for img in images {
        let out = docker(&["image", "inspect", img]).output().unwrap();
        assert!(
            out.status.success(),
            "{img} is missing: run scripts/engine-up.sh (scripts/test.sh does)"
        );
    }
}

const BASES: [&str; 2] = ["twip/examples-base:bookworm", "twip/base:bookworm"];

/// Where a command runs: the local engine (None) or a lab node's engine.
type Engine = Option<String>;

fn dk(engine: &Engine, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("docker");
    if let Some(e) = engine {
        c.args(["-H", e]);
    }
    c.args(args);
    c
}

fn lines(engine: &Engine, args: &[&str]) -> Vec<String> {
    let out = dk(engine, args).output().expect("docker CLI");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Running containers of a service of the stack on these engines: (engine, container id).
fn containers(engines: &[Engine], stack: &str, svc: &str) -> Vec<(Engine, String)> {
    let f = format!("label=com.docker.swarm.service.name={stack}_{svc}");
    let mut out = Vec::new();
    for e in engines {
        for id in lines(e, &["ps", "-q", "--filter", &f]) {
            out.push((e.clone(), id));
        }
    }
    out
}

/// One SQL query in the db container: its rows.
fn sql(engines: &[Engine], stack: &str, q: &str) -> Option<Vec<String>> {
    let (e, id) = containers(engines, stack, "db").into_iter().next()?;
    let out = dk(&e, &["exec", &id, "vote-sql", q]).output().ok()?;
    out.status
        .success()
        .then(|| lines_of(&String::from_utf8_lossy(&out.stdout)))
}

fn lines_of(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn sql_u64(engines: &[Engine], stack: &str, q: &str) -> Option<u64> {
    sql(engines, stack, q)?.first()?.parse().ok()
}

/// Votes still queued or in a worker's hands, over every queue.
fn pending(engines: &[Engine], stack: &str) -> Option<u64> {
    let mut n = 0;
    for (e, id) in containers(engines, stack, "queue") {
        let out = dk(&e, &["exec", &id, "vote-pending"]).output().ok()?;
        n += String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .ok()?;
    }
    Some(n)
}

/// What Postgres says once nothing is pending and the counts have stopped moving.
#[derive(Debug, Clone, PartialEq)]
struct Counted {
    /// rows in `votes` (one per accepted vote id)
    votes: u64,
    /// the sum of `tally` (what would be announced)
    tally: u64,
}

fn settle(engines: &[Engine], stack: &str) -> Counted {
    let read = || -> Option<Counted> {
        Some(Counted {
            votes: sql_u64(engines, stack, "SELECT count(*) FROM votes")?,
            tally: sql_u64(engines, stack, "SELECT coalesce(sum(n), 0) FROM tally")?,
        })
    };
    let mut last: Option<Counted> = None;
    let got = eventually(180, || {
        std::thread::sleep(Duration::from_secs(1));
        let now = (pending(engines, stack)? == 0).then(read).flatten()?;
        let stable = last.as_ref() == Some(&now);
        last = Some(now.clone());
        stable.then_some(now)
    });
    got.unwrap_or_else(|| panic!("votes did not settle within 3 min (last {last:?})"))
}

/// `twip bench --json` summary of a POST run.
#[derive(Debug)]
struct Bench {
    accepted: u64,
    /// responses other than 201
    refused: u64,
    /// requests without a complete response: each may or may not have been queued
    errors: u64,
    rps: f64,
    p99_ms: f64,
    json: serde_json::Value,
}

fn bench(url: &str, voter: &str, n: u32, rate: u32, plot: Option<&str>) -> Bench {
    let body = format!(r#"{{"voter":"{voter}","choice":"cats"}}"#);
    let (n, rate) = (n.to_string(), rate.to_string());
    let mut args = vec![
        "bench",
        url,
        "-d",
        &body,
        "-T",
        "application/json",
        "-n",
        &n,
        "--rate",
        &rate,
        "-c",
        "20",
        "--timeout",
        "30s",
        "--json",
    ];
    let plot_file;
    if let Some(dir) = plot {
        plot_file = format!("{dir}/{voter}.svg");
        args.extend(["--plot", &plot_file]);
    }
    let out = twip()
        .args(&args)
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bench --json: {e}\n{}", stderr(&out)));
    let codes = json["status_codes"].as_object().unwrap();
    let accepted = codes.get("201").and_then(|v| v.as_u64()).unwrap_or(0);
    let responses = json["responses"].as_u64().unwrap();
    let b = Bench {
        accepted,
        refused: responses - accepted,
        errors: json["requests"].as_u64().unwrap() - responses,
        rps: json["rps"].as_f64().unwrap(),
        p99_ms: json["latency_s"]["p99"].as_f64().unwrap_or(0.0) * 1000.0,
        json,
    };
    eprintln!(
        "bench {voter}: {} accepted, {} refused, {} errors, {:.0} req/s, p99 {:.1} ms; status {}, errors {}",
        b.accepted, b.refused, b.errors, b.rps, b.p99_ms, b.json["status_codes"], b.json["errors"]
    );
    b
}

/// The checker: every problem with the counts of `voter`'s votes, given what bench saw.
/// Empty when each accepted vote was counted exactly once.
fn check(
    engines: &[Engine],
    stack: &str,
    voter: &str,
    b: &Bench,
    before: &Counted,
    c: &Counted,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mine = sql_u64(
        engines,
        stack,
        &format!("SELECT count(*) FROM votes WHERE voter = '{voter}'"),
    )
    .expect("count votes");
    if mine < b.accepted {
        problems.push(format!(
            "lost: {} of {} accepted votes of {voter} are not in Postgres",
            b.accepted - mine,
            b.accepted
        ));
    }
    // A request that got no answer may have been queued: it may be counted, once.
    if mine > b.accepted + b.errors {
        problems.push(format!(
            "{voter}: {mine} votes in Postgres, more than {} accepted + {} unanswered",
            b.accepted, b.errors
        ));
    }
    // Only what this run added (an earlier negative control may have left its doubles).
    let extra = c.tally as i64 - c.votes as i64 - (before.tally as i64 - before.votes as i64);
    if extra != 0 {
        problems.push(format!(
            "counted twice: the tally grew by {} votes more than the distinct votes did",
            extra
        ));
    }
    problems
}

/// Kills (SIGKILL) a worker early in the window where a kill matters: its batch committed and
/// not yet acknowledged (ack-first: acknowledged and not committed). The worker writes the
/// time the window opened into /tmp/in-flight and holds the window for `hold_ms`; the kill is
/// sent only when the window opened less than a third of that ago, so it lands inside it.
fn kill_worker_in_flight(engines: &[Engine], stack: &str, hold_ms: u64) -> (Engine, String) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let victim = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no worker opened a batch window within 60 s"
        );
        let hit = containers(engines, stack, "worker")
            .into_iter()
            .find(|(e, id)| {
                let Ok(out) = dk(e, &["exec", id, "cat", "/tmp/in-flight"]).output() else {
                    return false;
                };
                let Ok(opened) = String::from_utf8_lossy(&out.stdout).trim().parse::<f64>() else {
                    return false;
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
                out.status.success() && (now - opened) * 1000.0 < hold_ms as f64 / 3.0
            });
        if let Some(v) = hit {
            break v;
        }
    };
    let out = dk(&victim.0, &["kill", &victim.1]).output().unwrap();
    assert!(
        out.status.success(),
        "docker kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("killed worker {} inside its batch window", victim.1);
    victim
}

/// Waits until a queue holds votes no worker has taken yet, then stops it (SIGTERM).
fn stop_queue_with_votes(engines: &[Engine], stack: &str) {
    let victim = eventually(60, || {
        containers(engines, stack, "queue")
            .into_iter()
            .find(|(e, id)| {
                let n = lines(e, &["exec", id, "redis-cli", "llen", "votes"]);
                n.first().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) > 0
            })
    })
    .expect("no queue held votes within 60 s");
    let out = dk(&victim.0, &["kill", "--signal", "TERM", &victim.1])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker kill -s TERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("stopped queue {} with votes in it", victim.1);
}

/// Votes of the test itself: `n` voters vote cats, then each changes to dogs.
fn own_votes(port: u16, prefix: &str, n: u32) {
    for choice in ["cats", "dogs"] {
        for i in 0..n {
            let body = format!(r#"{{"voter":"{prefix}-{i}","choice":"{choice}"}}"#);
            let r = http(port, "POST", "/vote", &body);
            assert_eq!(
                r.as_ref().map(|r| r.0),
                Some(201),
                "vote {prefix}-{i}: {r:?}"
            );
        }
    }
}

fn check_ballots(engines: &[Engine], stack: &str, prefix: &str, n: u32) {
    let rows = sql(
        engines,
        stack,
        &format!(
            "SELECT choice, count(*) FROM ballots WHERE voter LIKE '{prefix}-%' GROUP BY choice"
        ),
    )
    .unwrap();
    assert_eq!(
        rows,
        [format!("dogs|{n}")],
        "one ballot per voter, the latest vote"
    );
    let votes = sql_u64(
        engines,
        stack,
        &format!("SELECT count(*) FROM votes WHERE voter LIKE '{prefix}-%'"),
    );
    assert_eq!(votes, Some(2 * n as u64));
}

/// Waits until Postgres holds more than AT_LEAST votes of VOTER (the load reaches the database).
fn votes_arrive(engines: &[Engine], stack: &str, voter: &str, at_least: u64) -> u64 {
    let q = format!("SELECT count(*) FROM votes WHERE voter = '{voter}'");
    eventually(120, || {
        sql_u64(engines, stack, &q).filter(|n| *n > at_least)
    })
    .unwrap_or_else(|| panic!("no more than {at_least} votes of {voter} reached Postgres"))
}

fn ok(o: &Output, what: &str) -> String {
    let text = format!("{}{}", stdout(o), stderr(o));
    assert!(o.status.success(), "{what} failed:\n{text}");
    text
}

fn port() -> u16 {
    test_vars()
        .iter()
        .find(|(k, _)| *k == "TWIP_HTTP_PORT")
        .unwrap()
        .1
        .parse()
        .unwrap()
}

fn plot_dir() -> Option<String> {
    std::env::var("VOTE_BENCH_PLOT_DIR").ok()
}

#[test]
fn vote_on_one_node_counts_every_accepted_vote_once_and_the_checker_sees_faults() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require(&BASES);
    let p = VoteProject::new("single");
    let stack = p.stack.clone();
    let local: Vec<Engine> = vec![None];
    // Each batch is held 1 s after its commit: the window where a kill makes a replay.
    let hold = [("VOTE_WORKER_HOLD_MS", "1000")];

    ok(&p.twip(&[], &["validate"]), "validate");
    let r = p.twip(&[], &["render", "single", "-o", "-"]);
    let text = ok(&r, "render");
    assert!(
        text.contains("{{.Node.ID}}") && text.contains("{{.Task.Slot}}"),
        "{text}"
    );
    let b = p.twip(&[], &["build", "single"]);
    ok(&b, "build");
    let up = p.twip(&hold, &["up", "single", "--timeout", "4m"]);
    ok(&up, "up");
    // `up` can return while a global service's task is being replaced (twip counts a global
    // service's desired tasks from the tasks it sees): `twip test` gets a few tries.
    let t = eventually(60, || {
        let o = p.twip(&[], &["test", "single"]);
        o.status.success().then_some(o)
    });
    assert!(t.is_some(), "twip test single never passed");

    // Votes by the test itself: 30 voters change their minds; the ballot keeps the last.
    own_votes(port(), "one", 30);

    // Under load, a worker is killed with a batch in hand; its replacement (same slot)
    // finishes the batch, which is already committed: it must not count it again.
    let url = format!("http://127.0.0.1:{}/vote", port());
    let before = settle(&local, &stack);
    let loader = {
        let url = url.clone();
        std::thread::spawn(move || bench(&url, "bench-ok", 2000, 250, plot_dir().as_deref()))
    };
    votes_arrive(&local, &stack, "bench-ok", 0);
    kill_worker_in_flight(&local, &stack, 1000);
    let run = loader.join().unwrap();
    assert!(run.accepted > 1500, "{run:?}");
    let c = settle(&local, &stack);
    let problems = check(&local, &stack, "bench-ok", &run, &before, &c);
    assert!(problems.is_empty(), "{problems:#?}");
    check_ballots(&local, &stack, "one", 30);
    let node = list(&["info", "--format", "{{.Swarm.NodeID}}"]).join("");
    let paired = sql(
        &local,
        &stack,
        "SELECT DISTINCT front_node || ' ' || queue_node FROM votes",
    );
    assert_eq!(paired, Some(vec![format!("{node} {node}")]));
    let logs = String::from_utf8_lossy(
        &docker(&["service", "logs", &format!("{stack}_worker")])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(
        logs.contains("recovering"),
        "the replacement worker recovered nothing:\n{logs}"
    );

    // The queue is stopped (SIGTERM, as a drain or an update does) with votes in it: it
    // refuses new ones, waits until the workers have emptied it, then stops; Swarm restarts it.
    // Votes refused meanwhile (503) were not accepted; every accepted one must be counted.
    let before = c;
    let loader = {
        let url = url.clone();
        std::thread::spawn(move || bench(&url, "bench-stop", 2000, 250, None))
    };
    // Enough accepted votes to judge before the stop (more than 300 counted already).
    votes_arrive(&local, &stack, "bench-stop", 300);
    stop_queue_with_votes(&local, &stack);
    let run = loader.join().unwrap();
    assert!(run.accepted > 300, "{run:?}");
    let c = settle(&local, &stack);
    let problems = check(&local, &stack, "bench-stop", &run, &before, &c);
    assert!(problems.is_empty(), "{problems:#?}");

    // Negative controls: the same load, kill and checker against a broken worker (killed with
    // a batch in hand) and a queue that stops at once (stopped with votes in it).
    for (name, var, value, expect) in [
        ("ack-first", "VOTE_WORKER_FAULT", "ack-first", "lost"),
        ("no-dedup", "VOTE_WORKER_FAULT", "no-dedup", "counted twice"),
        ("no-drain", "VOTE_DRAIN_TIMEOUT", "0", "lost"),
    ] {
        let vars = [("VOTE_WORKER_HOLD_MS", "1000"), (var, value)];
        ok(
            &p.twip(&vars, &["up", "single", "--timeout", "4m"]),
            "up (fault)",
        );
        let voter = format!("bench-{name}");
        let before = settle(&local, &stack);
        let loader = {
            let (url, voter) = (url.clone(), voter.clone());
            std::thread::spawn(move || bench(&url, &voter, 1000, 250, None))
        };
        votes_arrive(&local, &stack, &voter, 0);
        if var == "VOTE_DRAIN_TIMEOUT" {
            stop_queue_with_votes(&local, &stack);
        } else {
            kill_worker_in_flight(&local, &stack, 1000);
        }
        let run = loader.join().unwrap();
        let c = settle(&local, &stack);
        let problems = check(&local, &stack, &voter, &run, &before, &c);
        eprintln!("{name}: {problems:?}");
        assert!(
            problems.iter().any(|p| p.starts_with(expect)),
            "the checker did not see the {name} fault: {problems:?} ({c:?}, {run:?})"
        );
    }

    let down = p.twip(&[], &["down", "single", "--volumes"]);
    ok(&down, "down");
    assert!(list(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}")
    ])
    .is_empty());
}

#[test]
fn vote_on_a_3_node_lab_survives_a_worker_kill_and_a_frontend_node_leaving() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require(&BASES);
    require(&["twip/lab-node:bookworm"]);
    let p = VoteProject::new("cluster");
    let stack = p.stack.clone();
    let lab = TestLab::new("v");
    let labbed = |vars: &[(&str, &str)], args: &[&str]| -> Output {
        let mut cmd = twip();
        cmd.current_dir(p.dir()).args(args);
        for (k, v) in test_vars() {
            cmd.env(k, v);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.env("TWIP_LAB_DIR", lab.state_dir())
            .env_remove("TWIP_LAB_IMAGE")
            .timeout(Duration::from_secs(900));
        cmd.output().unwrap()
    };
    ok(
        &labbed(&[], &["lab", "up", "--name", &lab.name, "--nodes", "3"]),
        "lab up",
    );
    let st = labbed(&[], &["lab", "status", "--name", &lab.name, "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let nodes = st["nodes"].as_array().unwrap().clone();
    let engines: Vec<Engine> = nodes
        .iter()
        .map(|n| Some(n["engine"].as_str().unwrap().to_string()))
        .collect();
    let manager_addr = nodes[0]["address"].as_str().unwrap().to_string();

    // VOTE_TEST_DRAIN_TIMEOUT=0 (a queue that stops at once; by hand) makes this test fail
    // with lost votes: the drain is what keeps them.
    let drain = std::env::var("VOTE_TEST_DRAIN_TIMEOUT").unwrap_or_else(|_| "50".into());
    let vars = [
        ("VOTE_WORKER_HOLD_MS", "600"),
        ("VOTE_DRAIN_TIMEOUT", drain.as_str()),
    ];
    let up = labbed(
        &vars,
        &["up", "cluster", "--lab", &lab.name, "--timeout", "5m"],
    );
    ok(&up, "up --lab");
    let t = eventually(60, || {
        let o = labbed(&[], &["test", "cluster", "--lab", &lab.name]);
        o.status.success().then_some(o)
    });
    assert!(t.is_some(), "twip test cluster --lab never passed");

    // Placement: Postgres on the db node (manager-1), a frontend and a queue on each front node.
    let on_node = |svc: &str| -> Vec<String> {
        let mut v = lines(
            &engines[0],
            &[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}",
                &format!("{stack}_{svc}"),
            ],
        );
        v.sort();
        v
    };
    let (m, w1, w2) = (
        format!("{}-manager-1", lab.name),
        format!("{}-worker-1", lab.name),
        format!("{}-worker-2", lab.name),
    );
    assert_eq!(on_node("db"), [m]);
    assert_eq!(on_node("web"), [w1.clone(), w2.clone()]);
    assert_eq!(on_node("queue"), [w1.clone(), w2.clone()]);
    // Votes come through both frontends, and each was queued on its frontend's node. (Rounds
    // of 40 until both frontends took some: right after `up`, HAProxy may not yet send to a
    // frontend whose health check has only just passed.)
    let mut pairs = None;
    for round in 0..5 {
        for i in 0..40 {
            let body = format!(r#"{{"voter":"pair-{round}-{i}","choice":"cats"}}"#);
            let r = http_to(&manager_addr, port(), &body);
            assert_eq!(r, Some(201));
        }
        let sent = 40 * (round + 1);
        pairs = eventually(60, || {
            let rows = sql(
                &engines,
                &stack,
                "SELECT count(DISTINCT front_node), count(*) FILTER (WHERE front_node <> queue_node), count(*) FROM votes WHERE voter LIKE 'pair-%'",
            )?;
            (rows.first()?.ends_with(&format!("|{sent}"))).then(|| rows[0].clone())
        });
        if pairs.as_deref().is_some_and(|p| p.starts_with("2|")) {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let pairs = pairs.expect("the pairing votes reach Postgres");
    let fields: Vec<&str> = pairs.split('|').collect();
    assert_eq!(
        (fields[0], fields[1]),
        ("2", "0"),
        "(front nodes | queued on another node | votes): {pairs}"
    );

    // Under load through the manager's proxy: kill a worker with a batch in hand, then
    // worker-2 (a frontend node) leaves the swarm; its queue drains before it stops.
    let url = format!("http://{manager_addr}:{}/vote", port());
    let before = settle(&engines, &stack);
    let loader =
        std::thread::spawn(move || bench(&url, "bench-lab", 4000, 200, plot_dir().as_deref()));
    votes_arrive(&engines, &stack, "bench-lab", 0);
    kill_worker_in_flight(&engines, &stack, 600);
    // Votes still reach Postgres after the kill (the load runs on), then the node leaves.
    let at_kill = votes_arrive(&engines, &stack, "bench-lab", 0);
    votes_arrive(&engines, &stack, "bench-lab", at_kill);
    let leave = labbed(
        &[],
        &[
            "swarm", "leave", "cluster", "--lab", &lab.name, "--node", "worker-2",
        ],
    );
    let run = loader.join().unwrap();
    let text = ok(&leave, "swarm leave");
    assert!(text.contains("removed from the swarm"), "{text}");
    assert!(!on_node("web").contains(&w2) && !on_node("queue").contains(&w2));
    assert!(run.accepted > 3000, "{run:?}");

    let live = &engines[..2];
    let c = settle(live, &stack);
    let problems = check(live, &stack, "bench-lab", &run, &before, &c);
    // What the queues and workers said (drains, hand-overs, recoveries): the drain's lines
    // always, everything when votes went missing.
    for svc in ["queue", "worker"] {
        let out = dk(
            &engines[0],
            &["service", "logs", "--timestamps", &format!("{stack}_{svc}")],
        )
        .output()
        .unwrap();
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !problems.is_empty() {
            eprintln!("---- {svc} logs ----\n{logs}");
        } else {
            for l in logs.lines().filter(|l| {
                [
                    "drained",
                    "drain timeout",
                    "handed",
                    "no other queue",
                    "recovering",
                ]
                .iter()
                .any(|w| l.contains(w))
            }) {
                eprintln!("{svc}: {l}");
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    eprintln!("lab: {c:?}");

    let down = labbed(&[], &["down", "cluster", "--lab", &lab.name, "--volumes"]);
    ok(&down, "down --lab");
    ok(
        &labbed(&[], &["lab", "down", "--name", &lab.name]),
        "lab down",
    );
}

/// POST /vote to ADDR:PORT (a lab node), the status code.
fn http_to(addr: &str, port: u16, body: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = format!("{addr}:{port}").parse().ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "POST /vote HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
