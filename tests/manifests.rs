//! Manifests: the project's environments validate; every malformed manifest of the catalogue
//! in tests/fixtures/invalid fails with exit code 2 and messages with file, line and column;
//! nothing makes the loader panic.

mod common;

use std::path::Path;

use common::{load, loader, repo, twip};

fn fixtures() -> Vec<String> {
    let dir = repo().join("tests/fixtures/invalid/environments");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('_'))
        .collect();
    names.sort();
    names
}

/// `FILE:LINE:COLUMN: ...` with a .yaml file and numbers.
fn is_positioned(line: &str) -> bool {
    let mut parts = line.splitn(4, ':');
    let file = parts.next().unwrap_or("");
    let l = parts.next().unwrap_or("");
    let c = parts.next().unwrap_or("");
    let rest = parts.next().unwrap_or("");
    file.ends_with(".yaml")
        && l.parse::<usize>().is_ok_and(|n| n > 0)
        && c.parse::<usize>().is_ok_and(|n| n > 0)
        && rest.starts_with(' ')
        && rest.len() > 5
}

#[test]
fn the_catalogue_has_at_least_25_malformed_manifests() {
    assert!(fixtures().len() >= 25, "only {} fixtures", fixtures().len());
}

#[test]
fn every_malformed_manifest_exits_2_with_positioned_messages() {
    let dir = repo().join("tests/fixtures/invalid");
    for name in fixtures() {
        let out = twip()
            .arg("--project-dir")
            .arg(&dir)
            .args(["validate", &name])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{name}: exit code\n{stderr}");
        assert!(!stderr.contains("panicked"), "{name} panicked:\n{stderr}");
        assert!(!stderr.contains("backtrace"), "{name}:\n{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(lines.len() >= 2, "{name}: {stderr}");
        for l in &lines[..lines.len() - 1] {
            assert!(is_positioned(l), "{name}: not FILE:LINE:COLUMN: {l}");
        }
        assert!(
            lines.last().unwrap().starts_with("error: "),
            "{name}: {stderr}"
        );
        insta::assert_snapshot!(format!("invalid__{name}"), stderr);
    }
}

#[test]
fn json_diagnostics_carry_the_same_positions() {
    let dir = repo().join("tests/fixtures/invalid");
    let out = twip()
        .arg("--project-dir")
        .arg(&dir)
        .args(["validate", "--json", "many-problems"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["environments"][0]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{v:#}");
    assert_eq!(problems[0]["file"], "environments/many-problems.yaml");
    assert_eq!(problems[0]["line"], 5);
    assert_eq!(problems[0]["column"], 15);
    assert_eq!(problems[0]["path"], "services.web.replicas");
    assert_eq!(problems[1]["path"], "services.static.portz");
}

#[test]
fn the_projects_environments_validate() {
    for name in ["training", "production", "scaled"] {
        let env = load(&repo(), name);
        assert_eq!(env.name, name);
        assert!(env.manifest.services.contains_key("web"), "{name}");
    }
}

#[test]
fn overlays_deep_merge_and_keep_what_they_do_not_change() {
    let training = load(&repo(), "training");
    let production = load(&repo(), "production");
    let scaled = load(&repo(), "scaled");
    assert_eq!(training.manifest.services["web"].replicas, Some(1));
    assert_eq!(production.manifest.services["web"].replicas, Some(3));
    // production did not restate the image or the volume: they come from training.
    assert_eq!(production.manifest.services["web"].image, "web");
    assert_eq!(production.manifest.services["web"].volumes.len(), 1);
    assert_eq!(scaled.manifest.images["web"].platforms.len(), 3);
    // scaled keeps production's update config.
    assert!(scaled.manifest.services["web"].update.is_some());
    assert_eq!(scaled.manifest.nodes.len(), 3);
}

#[test]
fn interpolation_reads_the_environment_and_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("environments")).unwrap();
    std::fs::write(
        dir.path().join("environments/x.yaml"),
        "services:\n  web:\n    image: \"nginx:${TAG}\"\n    replicas: ${N:-2}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".env"), "TAG=1.25\n").unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(dir.path())
        .args(["render", "x", "-o", "-"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("image: \"nginx:1.25\""), "{stdout}");
    assert!(stdout.contains("replicas: 2"), "{stdout}");
    // The process environment wins over .env.
    let out = twip()
        .arg("--project-dir")
        .arg(dir.path())
        .env("TAG", "1.27")
        .env("N", "4")
        .args(["render", "x", "-o", "-"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("image: \"nginx:1.27\""), "{stdout}");
    assert!(stdout.contains("replicas: 4"), "{stdout}");
}

/// Every prefix of every environment file, and copies with bytes flipped: the loader returns
/// problems or a manifest, and never panics.
#[test]
fn no_input_makes_the_loader_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let envs = tmp.path().join("environments");
    std::fs::create_dir(&envs).unwrap();
    let mut sources: Vec<Vec<u8>> = Vec::new();
    for name in ["training", "production", "scaled"] {
        sources.push(std::fs::read(repo().join(format!("environments/{name}.yaml"))).unwrap());
    }
    std::fs::copy(
        repo().join("environments/training.yaml"),
        envs.join("training.yaml"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("environments/production.yaml"),
        envs.join("production.yaml"),
    )
    .unwrap();
    let l = loader(tmp.path());
    let path = envs.join("fuzz.yaml");
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for src in &sources {
        for cut in (0..src.len()).step_by(7) {
            inputs.push(src[..cut].to_vec());
        }
        for _ in 0..300 {
            let mut b = src.clone();
            for _ in 0..3 {
                let i = (next() as usize) % b.len();
                b[i] = b"{}[]:,-'\"&*!|>#%@`\t\n \xff${"[(next() as usize) % 24];
            }
            inputs.push(b);
        }
    }
    for input in inputs {
        std::fs::write(&path, &input).unwrap();
        let result = std::panic::catch_unwind(|| {
            let _ = l.load_file("fuzz", &path);
        });
        assert!(
            result.is_ok(),
            "the loader panicked on:\n{}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn docs_manifest_examples_validate() {
    let doc = std::fs::read_to_string(repo().join("docs/manifest.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    assert!(
        blocks.len() >= 5,
        "docs/manifest.md has only {} yaml examples",
        blocks.len()
    );
    // Examples run in a copy of the repository's layout, so their build contexts exist.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("environments")).unwrap();
    copy_dir(&repo().join("images"), &tmp.path().join("images"));
    std::fs::copy(
        repo().join("environments/training.yaml"),
        tmp.path().join("environments/training.yaml"),
    )
    .unwrap();
    std::fs::copy(
        repo().join("environments/production.yaml"),
        tmp.path().join("environments/production.yaml"),
    )
    .unwrap();
    // The certificates the HTTPS example names.
    std::fs::create_dir(tmp.path().join("certs")).unwrap();
    for (name, files) in [
        ("news.example.com", ["news.crt", "news.key"]),
        ("api.example.com", ["api.pem", "api.pem"]),
    ] {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (cert.pem(), key.serialize_pem());
        if files[0] == files[1] {
            std::fs::write(tmp.path().join("certs").join(files[0]), format!("{c}{k}")).unwrap();
        } else {
            std::fs::write(tmp.path().join("certs").join(files[0]), c).unwrap();
            std::fs::write(tmp.path().join("certs").join(files[1]), k).unwrap();
        }
    }
    let l = loader(tmp.path());
    for (i, b) in blocks.iter().enumerate() {
        let path = tmp.path().join(format!("environments/example{i}.yaml"));
        std::fs::write(&path, b).unwrap();
        if let Err(d) = l.load_file(&format!("example{i}"), &path) {
            panic!("docs/manifest.md example {i} does not validate:\n{d}\n---\n{b}");
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A YAML bomb, generated here, fed to `twip validate` as a subprocess (an abort or a stack
/// overflow would show as a signal, not exit 2): it fails with exit 2 and a message that
/// names the limit, at a position.
fn assert_bomb_refused(name: &str, text: &str, expect: &str) {
    assert!(
        text.len() <= 1 << 20,
        "{name}: the bomb itself is under 1 MiB"
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("environments")).unwrap();
    std::fs::write(tmp.path().join(format!("environments/{name}.yaml")), text).unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(tmp.path())
        .args(["validate", name])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name}:\n{stderr}");
    assert!(
        stderr.contains(expect),
        "{name}: expected `{expect}` in\n{stderr}"
    );
    let first = stderr.lines().next().unwrap_or("");
    assert!(
        first.starts_with(&format!("environments/{name}.yaml:")),
        "{name}: not positioned: {first}"
    );
    assert!(!stderr.contains("panicked"), "{name}:\n{stderr}");
}

/// The bombs of the security review: each is small, and each would expand, nest or scan far
/// beyond what a manifest needs.
fn bombs() -> Vec<(&'static str, String, &'static str)> {
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (i, c) in ('b'..='i').enumerate() {
        let prev = (b'a' + i as u8) as char;
        laughs.push_str(&format!(
            "{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    laughs.push_str("services: {web: {image: \"nginx:1\"}}\n");
    let mut merges = String::from("m0: &m0 {k0: 0}\n");
    for i in 1..3000 {
        merges.push_str(&format!(
            "m{i}: &m{i} {{<<: [*m{}, *m0], k{i}: {i}}}\n",
            i - 1
        ));
    }
    let block_nesting = format!("x:\n  {}a\n", "- ".repeat(10_000));
    let flow_nesting = format!("x: {}{}\n", "[".repeat(200_000), "]".repeat(200_000));
    let interp = format!("{}x{}", "${A:-".repeat(30_000), "}".repeat(30_000));
    let interp = format!("services: {{web: {{image: \"{interp}\"}}}}\n");
    let many_keys = {
        let mut s = String::from("services:\n  web:\n    image: \"nginx:1\"\n    labels:\n");
        for i in 0..45_000 {
            s.push_str(&format!("      k{i}: v\n"));
        }
        s.push_str("      k0: again\n");
        s
    };
    let big_scalar = format!(
        "services: {{web: {{image: \"nginx:1\", command: \"{}\"}}}}\n",
        "x".repeat(300_000)
    );
    let too_big = format!("# {}\nservices: {{}}\n", "x".repeat((1 << 20) + 10));
    vec![
        ("billion-laughs", laughs, "aliases are expanded"),
        ("merge-chain", merges, "aliases are expanded"),
        ("block-nesting", block_nesting, "nested more than 64 deep"),
        ("flow-nesting", flow_nesting, "invalid YAML"),
        ("interpolation-nesting", interp, "nested more than 8 deep"),
        ("many-keys", many_keys, "duplicate key `k0`"),
        ("big-scalar", big_scalar, "the limit is 262144"),
        ("too-big", too_big, "at most 1048576 bytes"),
    ]
}

#[test]
fn yaml_bombs_fail_fast_with_exit_2() {
    let bombs = bombs();
    assert_eq!(bombs.len(), 8);
    for (name, text, expect) in bombs {
        if name == "too-big" {
            // Over the limit on purpose: checked below without the size assertion.
            continue;
        }
        assert_bomb_refused(name, &text, expect);
    }
}

#[test]
fn a_file_over_1_mib_is_refused_before_it_is_read() {
    let (name, text, expect) = bombs().pop().unwrap();
    assert_eq!(name, "too-big");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("environments")).unwrap();
    std::fs::write(tmp.path().join("environments/too-big.yaml"), text).unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(tmp.path())
        .args(["validate", "too-big"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(expect), "{stderr}");
    assert!(
        stderr.starts_with("environments/too-big.yaml:1:1: "),
        "{stderr}"
    );
}

/// Writes the bombs to DIR (for measuring `twip validate` with `/usr/bin/time -v` by hand):
/// `TWIP_WRITE_BOMBS=DIR cargo test --test manifests write_bombs`.
#[test]
fn write_bombs() {
    let Some(dir) = std::env::var_os("TWIP_WRITE_BOMBS") else {
        return;
    };
    let dir = Path::new(&dir).join("environments");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text, _) in bombs() {
        std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
    }
}

/// A secret-looking variable reaches a value that fails validation, the text of a `:?`
/// message, and a de error: its value appears in no output (human, `--json`, `-v`).
#[test]
fn errors_never_show_interpolated_values() {
    const SECRET: &str = "s3cr3t-P4ssw0rd-do-not-print";
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("environments")).unwrap();
    // Each stage stops the load, so each gets its own file: interpolation, types, rules.
    let files = [
        ("leak-interp", "services:\n  web:\n    image: \"nginx:1\"\n    hostname: \"${NOPE:?no NOPE, the token is ${REG_PASSWORD}}\"\n"),
        ("leak-type", "services:\n  web:\n    image: \"nginx:1\"\n    replicas: \"${REG_PASSWORD}\"\n"),
        ("leak-rules", "services:\n  web:\n    image: \"https://user:${REG_PASSWORD}@r.example.com/x:1\"\nregistry:\n  url: \"https://u:${REG_PASSWORD}@r.example.com\"\n"),
    ];
    let mut seen = 0;
    for (name, text) in files {
        std::fs::write(tmp.path().join(format!("environments/{name}.yaml")), text).unwrap();
        for args in [
            vec!["validate", name],
            vec!["validate", "--json", name],
            vec!["-v", "validate", name],
            vec!["-v", "render", name, "-o", "-"],
        ] {
            let out = twip()
                .arg("--project-dir")
                .arg(tmp.path())
                .args(&args)
                .env("REG_PASSWORD", SECRET)
                .output()
                .unwrap();
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
            assert!(
                all.contains("REG_PASSWORD"),
                "{args:?}: the name is shown: {all}"
            );
            assert!(!all.contains(SECRET), "{args:?} printed the secret: {all}");
            assert!(
                !all.contains("P4ssw0rd"),
                "{args:?} printed part of it: {all}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 12);
}

/// A dangling link in environments/ is a problem of that environment only.
#[test]
fn a_dangling_environment_does_not_stop_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let envs = tmp.path().join("environments");
    std::fs::create_dir(&envs).unwrap();
    std::fs::write(
        envs.join("good.yaml"),
        "services:\n  web:\n    image: \"nginx:1.25\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(tmp.path().join("missing.yaml"), envs.join("gone.yaml")).unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(tmp.path())
        .arg("validate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("good"), "{stderr}");
    assert!(
        stderr.contains("environments/gone.yaml:1:1: cannot read the file"),
        "{stderr}"
    );
}

/// A UTF-8 byte order mark does not make a manifest invalid.
#[test]
fn a_byte_order_mark_is_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("environments")).unwrap();
    std::fs::write(
        tmp.path().join("environments/bom.yaml"),
        "\u{feff}services:\n  web:\n    image: \"nginx:1.25\"\n",
    )
    .unwrap();
    let out = twip()
        .arg("--project-dir")
        .arg(tmp.path())
        .args(["validate", "bom"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
