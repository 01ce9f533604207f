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

/// `docker buildx build --platform P1,P2 -f DOCKERFILE --build-arg K=V ... -t TAG ...
/// [--load] [--push] [--no-cache] [--target T] [--cache-from ...] [--cache-to ...]
/// [--metadata-file F] CONTEXT`
pub fn build(s: &BuildSpec) -> Cmd {
    let mut c = Cmd::new("docker").args(["buildx", "build"]);
    if let Some(b) = &s.builder {
        c = c.args(["--builder", b]);
    }
    if !s.platforms.is_empty() {
        c = c.args(["--platform".to_string(), s.platforms.join(",")]);
    }
    if let Some(df) = &s.dockerfile {
        c = c.args(["-f".to_string(), df.display().to_string()]);
    }
    for (k, v) in &s.build_args {
        c = c.args(["--build-arg".to_string(), format!("{k}={v}")]);
    }
    for t in &s.tags {
        c = c.args(["-t", t]);
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
        c = c.args(["--target", t]);
    }
    for f in &s.cache_from {
        c = c.args(["--cache-from", f]);
    }
    if let Some(t) = &s.cache_to {
        c = c.args(["--cache-to", t]);
    }
    if let Some(m) = &s.metadata_file {
        c = c.args(["--metadata-file".to_string(), m.display().to_string()]);
    }
    c.arg(s.context.display().to_string())
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

/// `docker buildx inspect [NAME]`: the builder's driver and the platforms it can build.
pub fn inspect(builder: Option<&str>) -> Cmd {
    Cmd::new("docker")
        .args(["buildx", "inspect"])
        .args(builder.map(str::to_string))
}

/// `docker buildx imagetools inspect REF`: the platforms of an image in a registry.
pub fn imagetools_inspect(reference: &str) -> Cmd {
    Cmd::new("docker").args(["buildx", "imagetools", "inspect", reference])
}

/// `docker buildx imagetools inspect --raw REF`: the manifest (or index) as JSON.
pub fn imagetools_inspect_raw(reference: &str) -> Cmd {
    Cmd::new("docker").args(["buildx", "imagetools", "inspect", "--raw", reference])
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
            build(&spec()).to_string(),
            "docker buildx build --platform linux/amd64,linux/arm64 -f /p/images/web/Dockerfile \
             --build-arg BASE=localhost:5000/twip/base:bookworm --build-arg VERSION=1.0.0 \
             -t localhost:5000/twip/web:1.0.0 -t localhost:5000/twip/web:abc1234 \
             -t localhost:5000/twip/web:latest --push /p/images/web"
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
            build(&s).to_string(),
            "docker buildx build --builder multi --platform linux/arm64 -t twip/web:latest \
             --load --push --no-cache --target runtime \
             --cache-from type=local,src=/var/cache/twip/bk \
             --cache-to type=local,dest=/var/cache/twip/bk,mode=max \
             --metadata-file /tmp/m.json /p/images/web"
        );
    }

    #[test]
    fn engine_platform_load_has_no_platform_flag() {
        let mut s = BuildSpec::new("ctx dir");
        s.tags = vec!["twip/web:latest".into()];
        assert_eq!(
            build(&s).to_string(),
            "docker buildx build -t twip/web:latest --load 'ctx dir'"
        );
        s.output = Output::CacheOnly;
        assert_eq!(
            build(&s).to_string(),
            "docker buildx build -t twip/web:latest 'ctx dir'"
        );
    }

    #[test]
    fn other_commands() {
        assert_eq!(version().to_string(), "docker buildx version");
        assert_eq!(inspect(None).to_string(), "docker buildx inspect");
        assert_eq!(inspect(Some("b")).to_string(), "docker buildx inspect b");
        assert_eq!(
            imagetools_inspect("localhost:5000/twip/web:1").to_string(),
            "docker buildx imagetools inspect localhost:5000/twip/web:1"
        );
        assert_eq!(
            imagetools_inspect_raw("r:1").to_string(),
            "docker buildx imagetools inspect --raw r:1"
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
}
