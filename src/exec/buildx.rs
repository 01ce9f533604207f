//! `docker buildx` commands, as pure argv builders. Nothing here runs anything.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Cmd;

/// Where a build's result goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Into the local engine's image store (`--load`; one platform for most engines).
    Load,
    /// To the registry named by the tags (`--push`).
    Push,
    /// Both (`--load --push`): the local engine can run it, and nodes can pull it. Not for the
    /// `docker` driver, whose `--push` loads as well (two exporters would race on the name).
    LoadAndPush,
    /// Only the build cache (a check that it builds).
    CacheOnly,
}

/// Everything `docker buildx build` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    pub context: PathBuf,
    /// `-f`; `None`: buildx's default, `CONTEXT/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    /// `--platform`; empty: the builder's own platform.
    pub platforms: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    /// Full references (`registry/ns/name:tag`).
    pub tags: Vec<String>,
    pub output: Output,
    pub no_cache: bool,
    pub target: Option<String>,
    pub cache_from: Vec<String>,
    pub cache_to: Option<String>,
    /// `--metadata-file`: buildx writes the image digest there.
    pub metadata_file: Option<PathBuf>,
    /// `--builder`; `None`: the current one.
    pub builder: Option<String>,
}

impl BuildSpec {
    pub fn new(context: impl Into<PathBuf>) -> Self {
        BuildSpec {
            context: context.into(),
            dockerfile: None,
            platforms: Vec::new(),
            build_args: BTreeMap::new(),
            tags: Vec::new(),
            output: Output::Load,
            no_cache: false,
            target: None,
            cache_from: Vec::new(),
            cache_to: None,
            metadata_file: None,
            builder: None,
        }
    }
}

/// `docker buildx build --platform=P1,P2 --file=DOCKERFILE --build-arg=K=V ... --tag=TAG ...
/// [--load] [--push] [--no-cache] [--target=T] [--cache-from=...] [--cache-to=...]
/// [--metadata-file=F] -- CONTEXT`
///
/// Every value is attached to its option with `=` and checked ([`super::checked`]: refused
/// when it starts with `-`); the context comes after `--`. A build-arg name may not hold `=`.
pub fn build(s: &BuildSpec) -> anyhow::Result<Cmd> {
    let ck = |what: &str, v: &str| super::checked("docker buildx build", what, v).map(|_| ());
    let mut c = Cmd::new("docker").args(["buildx", "build"]);
    if let Some(b) = &s.builder {
        ck("the builder", b)?;
        c = c.arg(format!("--builder={b}"));
    }
    if !s.platforms.is_empty() {
        for p in &s.platforms {
            ck("the platform", p)?;
        }
        c = c.arg(format!("--platform={}", s.platforms.join(",")));
    }
    if let Some(df) = &s.dockerfile {
        let df = df.display().to_string();
        ck("the dockerfile", &df)?;
        c = c.arg(format!("--file={df}"));
    }
    for (k, v) in &s.build_args {
        ck("the build argument name", k)?;
        if k.contains('=') {
            return Err(crate::exit::invalid(format!(
                "refusing to run docker buildx build: the build argument name {k:?} holds `=`"
            )));
        }
        c = c.arg(format!("--build-arg={k}={v}"));
    }
    for t in &s.tags {
        ck("the image reference", t)?;
        c = c.arg(format!("--tag={t}"));
    }
    match s.output {
        Output::Load => c = c.arg("--load"),
        Output::Push => c = c.arg("--push"),
        Output::LoadAndPush => c = c.args(["--load", "--push"]),
        Output::CacheOnly => {}
    }
    if s.no_cache {
        c = c.arg("--no-cache");
    }
    if let Some(t) = &s.target {
        ck("the build target", t)?;
        c = c.arg(format!("--target={t}"));
    }
    for f in &s.cache_from {
        ck("the cache source", f)?;
        c = c.arg(format!("--cache-from={f}"));
    }
    if let Some(t) = &s.cache_to {
        ck("the cache destination", t)?;
        c = c.arg(format!("--cache-to={t}"));
    }
    if let Some(m) = &s.metadata_file {
        let m = m.display().to_string();
        ck("the metadata file", &m)?;
        c = c.arg(format!("--metadata-file={m}"));
    }
    let context = s.context.display().to_string();
    if context.is_empty() {
        return Err(crate::exit::invalid(
            "refusing to run docker buildx build: the build context is empty",
        ));
    }
    Ok(c.arg("--").arg(context))
}

/// A local cache directory, read and written: (`--cache-from`, `--cache-to`) values.
pub fn local_cache(dir: &std::path::Path) -> (String, String) {
    (
        format!("type=local,src={}", dir.display()),
        format!("type=local,dest={},mode=max", dir.display()),
    )
}

/// `docker buildx version`: fails when the plugin is missing.
pub fn version() -> Cmd {
    Cmd::new("docker").args(["buildx", "version"])
}

/// `docker buildx inspect [-- NAME]`: the builder's driver and the platforms it can build.
pub fn inspect(builder: Option<&str>) -> anyhow::Result<Cmd> {
    let c = Cmd::new("docker").args(["buildx", "inspect"]);
    Ok(match builder {
        Some(b) => c
            .arg("--")
            .arg(super::checked("docker buildx inspect", "the builder", b)?),
        None => c,
    })
}

/// `docker buildx imagetools inspect -- REF`: the platforms of an image in a registry.
pub fn imagetools_inspect(reference: &str) -> anyhow::Result<Cmd> {
    let r = super::checked("docker buildx imagetools", "the image reference", reference)?;
    Ok(Cmd::new("docker").args(["buildx", "imagetools", "inspect", "--", r]))
}

/// `docker buildx imagetools inspect --raw -- REF`: the manifest (or index) as JSON.
pub fn imagetools_inspect_raw(reference: &str) -> anyhow::Result<Cmd> {
    let r = super::checked("docker buildx imagetools", "the image reference", reference)?;
    Ok(Cmd::new("docker").args(["buildx", "imagetools", "inspect", "--raw", "--", r]))
}

/// What `docker buildx inspect` says about a builder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderInfo {
    pub name: String,
    pub driver: String,
    /// Platforms its nodes can build (emulated ones included), as listed.
    pub platforms: Vec<String>,
}

/// Parses the text of `docker buildx inspect`.
pub fn parse_inspect(text: &str) -> BuilderInfo {
    let mut info = BuilderInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Name" if info.name.is_empty() => info.name = value.to_string(),
            "Driver" => info.driver = value.to_string(),
            "Platforms" => {
                for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let p = p.trim_end_matches('*').to_string();
                    if !info.platforms.contains(&p) {
                        info.platforms.push(p);
                    }
                }
            }
            _ => {}
        }
    }
    info
}

/// `linux/arm64/v8` is `linux/arm64`; everything else as written.
pub fn normalize_platform(p: &str) -> String {
    match p {
        "linux/arm64/v8" => "linux/arm64".to_string(),
        "linux/arm" => "linux/arm/v7".to_string(),
        other => other.to_string(),
    }
}

/// Requested platforms the builder does not list.
pub fn unsupported_platforms(info: &BuilderInfo, wanted: &[String]) -> Vec<String> {
    let have: Vec<String> = info
        .platforms
        .iter()
        .map(|p| normalize_platform(p))
        .collect();
    wanted
        .iter()
        .filter(|w| !have.contains(&normalize_platform(w)))
        .cloned()
        .collect()
}

/// The image digest buildx wrote to `--metadata-file`.
pub fn digest_from_metadata(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.get("containerimage.digest")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BuildSpec {
        let mut s = BuildSpec::new("/p/images/web");
        s.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
        s.dockerfile = Some("/p/images/web/Dockerfile".into());
        s.build_args = BTreeMap::from([
            (
                "BASE".to_string(),
                "localhost:5000/twip/base:bookworm".to_string(),
            ),
            ("VERSION".to_string(), "1.0.0".to_string()),
        ]);
        s.tags = vec![
            "localhost:5000/twip/web:1.0.0".into(),
            "localhost:5000/twip/web:abc1234".into(),
            "localhost:5000/twip/web:latest".into(),
        ];
        s.output = Output::Push;
        s
    }

    #[test]
    fn multi_platform_push() {
        assert_eq!(
            build(&spec()).unwrap().to_string(),
            "docker buildx build --platform=linux/amd64,linux/arm64 --file=/p/images/web/Dockerfile \
             --build-arg=BASE=localhost:5000/twip/base:bookworm --build-arg=VERSION=1.0.0 \
             --tag=localhost:5000/twip/web:1.0.0 --tag=localhost:5000/twip/web:abc1234 \
             --tag=localhost:5000/twip/web:latest --push -- /p/images/web"
        );
    }

    #[test]
    fn single_platform_load_with_every_option() {
        let mut s = spec();
        s.platforms = vec!["linux/arm64".into()];
        s.tags = vec!["twip/web:latest".into()];
        s.build_args.clear();
        s.dockerfile = None;
        s.output = Output::LoadAndPush;
        s.no_cache = true;
        s.target = Some("runtime".into());
        let (from, to) = local_cache(std::path::Path::new("/var/cache/twip/bk"));
        s.cache_from = vec![from];
        s.cache_to = Some(to);
        s.metadata_file = Some("/tmp/m.json".into());
        s.builder = Some("multi".into());
        assert_eq!(
            build(&s).unwrap().to_string(),
            "docker buildx build --builder=multi --platform=linux/arm64 --tag=twip/web:latest \
             --load --push --no-cache --target=runtime \
             --cache-from=type=local,src=/var/cache/twip/bk \
             --cache-to=type=local,dest=/var/cache/twip/bk,mode=max \
             --metadata-file=/tmp/m.json -- /p/images/web"
        );
    }

    #[test]
    fn engine_platform_load_has_no_platform_flag() {
        let mut s = BuildSpec::new("ctx dir");
        s.tags = vec!["twip/web:latest".into()];
        assert_eq!(
            build(&s).unwrap().to_string(),
            "docker buildx build --tag=twip/web:latest --load -- 'ctx dir'"
        );
        s.output = Output::CacheOnly;
        assert_eq!(
            build(&s).unwrap().to_string(),
            "docker buildx build --tag=twip/web:latest -- 'ctx dir'"
        );
    }

    #[test]
    fn other_commands() {
        assert_eq!(version().to_string(), "docker buildx version");
        assert_eq!(inspect(None).unwrap().to_string(), "docker buildx inspect");
        assert_eq!(
            inspect(Some("b")).unwrap().to_string(),
            "docker buildx inspect -- b"
        );
        assert_eq!(
            imagetools_inspect("localhost:5000/twip/web:1")
                .unwrap()
                .to_string(),
            "docker buildx imagetools inspect -- localhost:5000/twip/web:1"
        );
        assert_eq!(
            imagetools_inspect_raw("r:1").unwrap().to_string(),
            "docker buildx imagetools inspect --raw -- r:1"
        );
    }

    const INSPECT: &str = "\
Name:          default
Driver:        docker
Last Activity: 2026-11-21 09:51:32 +0000 UTC

Nodes:
Name:             default
Endpoint:         default
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/arm64, linux/riscv64
Labels:
 org.mobyproject.buildkit.worker.executor:             containerd
";

    #[test]
    fn inspect_output_parses() {
        let info = parse_inspect(INSPECT);
        assert_eq!(info.name, "default");
        assert_eq!(info.driver, "docker");
        assert_eq!(
            info.platforms,
            [
                "linux/amd64",
                "linux/amd64/v2",
                "linux/arm64",
                "linux/riscv64"
            ]
        );
        let wanted: Vec<String> = ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
            .map(String::from)
            .to_vec();
        assert_eq!(unsupported_platforms(&info, &wanted), ["linux/arm/v7"]);
    }

    #[test]
    fn metadata_digest() {
        let json =
            r#"{"buildx.build.ref":"default/default/x","containerimage.digest":"sha256:e74f"}"#;
        assert_eq!(digest_from_metadata(json).as_deref(), Some("sha256:e74f"));
        assert_eq!(digest_from_metadata("{}"), None);
    }

    use crate::exec::tests::{assert_no_injected_option, assert_refused, HOSTILE};

    /// twip's own buildx options.
    const OWN: &[&str] = &[
        "--builder",
        "--platform",
        "--file",
        "--build-arg",
        "--tag",
        "--load",
        "--push",
        "--no-cache",
        "--target",
        "--cache-from",
        "--cache-to",
        "--metadata-file",
        "--",
        "--raw",
    ];

    #[test]
    fn every_user_value_that_reads_as_an_option_is_refused() {
        type Set = fn(&mut BuildSpec, &str);
        let fields: [(&str, Set); 8] = [
            ("the builder", |s, v| s.builder = Some(v.into())),
            ("the platform", |s, v| s.platforms.push(v.into())),
            ("the dockerfile", |s, v| s.dockerfile = Some(v.into())),
            ("the build argument name", |s, v| {
                s.build_args.insert(v.into(), "1".into());
            }),
            ("the image reference", |s, v| s.tags.push(v.into())),
            ("the build target", |s, v| s.target = Some(v.into())),
            ("the cache source", |s, v| s.cache_from.push(v.into())),
            ("the cache destination", |s, v| s.cache_to = Some(v.into())),
        ];
        let mut n = 0;
        for (what, set) in fields {
            for v in HOSTILE.iter().copied().chain(["", "a\nb"]) {
                let mut s = spec();
                set(&mut s, v);
                assert_refused(build(&s), what);
                n += 1;
            }
        }
        assert!(n >= 70);
        let mut s = spec();
        s.build_args.insert("A=B".into(), "1".into());
        assert_refused(build(&s), "holds `=`");
        for v in HOSTILE {
            assert_refused(inspect(Some(v)), "the builder");
            assert_refused(imagetools_inspect(v), "the image reference");
            assert_refused(imagetools_inspect_raw(v), "the image reference");
        }
    }

    #[test]
    fn values_are_attached_and_the_context_comes_after_dashes() {
        let mut s = spec();
        // A build-arg value may start with `-`: it is attached to its name.
        s.build_args.insert("FLAGS".into(), "-O2 --fast".into());
        // A context whose name starts with `-` is an operand after `--`.
        s.context = "-ctx".into();
        let cmd = build(&s).unwrap();
        assert_no_injected_option(&cmd, OWN, "-ctx");
        assert!(cmd
            .args
            .contains(&"--build-arg=FLAGS=-O2 --fast".to_string()));
        assert_eq!(&cmd.args[cmd.args.len() - 2..], ["--", "-ctx"]);
        assert_no_injected_option(&inspect(Some("b")).unwrap(), OWN, "b");
        assert_no_injected_option(&imagetools_inspect_raw("r:1").unwrap(), OWN, "r:1");
    }
}
