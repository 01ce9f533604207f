//! Lab provisioning through the in-memory [`FakeHost`]: no daemon.

use std::collections::BTreeMap;

use super::*;
use crate::engine::host::{FakeHost, FakeNetwork, FakeState};

fn quiet() -> Ui {
    Ui {
        verbose: 0,
        quiet: true,
        color: false,
        interactive: false,
    }
}

fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A host with every node image `up` may choose.
fn host_with_images() -> FakeHost {
    let mut images = vec![
        super::super::OFFLINE_IMAGE.to_string(),
        super::super::PUBLIC_IMAGE.to_string(),
    ];
    images.extend(
        std::env::var("TWIP_LAB_IMAGE")
            .ok()
            .filter(|s| !s.is_empty()),
    );
    FakeHost::new(FakeState {
        images,
        ..Default::default()
    })
}

fn request(name: &str, nodes: u32, managers: u32, retain: bool) -> UpRequest {
    UpRequest {
        name: name.into(),
        nodes,
        managers,
        retain,
    }
}

/// Runs the host steps of `up` (image, network, node containers).
fn run_create(host: &FakeHost, req: &UpRequest) -> (anyhow::Result<()>, UpCtx) {
    let ui = quiet();
    let mut ctx = UpCtx {
        name: req.name.clone(),
        image: super::super::OFFLINE_IMAGE.to_string(),
        network: super::super::network_name(&req.name),
        ..Default::default()
    };
    let r = block_on(create(host, &mut ctx, req, &Steps { ui: &ui }));
    (r, ctx)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn nodes_are_created_with_their_roles_indices_and_addresses() {
    let host = host_with_images();
    let (r, ctx) = run_create(&host, &request("fka", 3, 1, false));
    r.unwrap();
    let s = host.snapshot();
    let mut names: Vec<&str> = s.containers.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["fka-manager-1", "fka-worker-1", "fka-worker-2"]);
    let octet = ctx.subnet.split('.').nth(2).unwrap().to_string();
    for (i, (name, role)) in [
        ("fka-manager-1", "manager"),
        ("fka-worker-1", "worker"),
        ("fka-worker-2", "worker"),
    ]
    .iter()
    .enumerate()
    {
        let c = s.containers.iter().find(|c| c.name == *name).unwrap();
        assert_eq!(
            c.labels,
            labels(&[
                (LABEL_LAB, "fka"),
                (LABEL_ROLE, role),
                (LABEL_INDEX, &i.to_string()),
            ]),
            "{name}"
        );
        assert_eq!(c.address, format!("10.99.{octet}.{}", 11 + i), "{name}");
        assert_eq!(c.network, "twip-lab-fka");
        assert_eq!(c.volume, format!("{name}-docker"));
        assert_eq!(c.image, super::super::OFFLINE_IMAGE);
        assert!(c.cmd.contains(&"--host=tcp://0.0.0.0:2375".to_string()));
    }
}

#[test]
fn managers_come_first() {
    let host = host_with_images();
    let (r, ctx) = run_create(&host, &request("fkm", 4, 2, false));
    r.unwrap();
    let roles: Vec<(&str, Role)> = ctx
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.role))
        .collect();
    assert_eq!(
        roles,
        [
            ("fkm-manager-1", Role::Manager),
            ("fkm-manager-2", Role::Manager),
            ("fkm-worker-1", Role::Worker),
            ("fkm-worker-2", Role::Worker),
        ]
    );
    let s = host.snapshot();
    let managers = s
        .containers
        .iter()
        .filter(|c| c.labels.get(LABEL_ROLE).map(String::as_str) == Some("manager"))
        .count();
    assert_eq!((s.containers.len(), managers), (4, 2));
}

#[test]
fn the_network_and_volumes_carry_the_lab_label() {
    let host = host_with_images();
    let (r, ctx) = run_create(&host, &request("fkn", 2, 1, false));
    r.unwrap();
    let s = host.snapshot();
    assert_eq!(
        s.networks,
        [FakeNetwork {
            name: "twip-lab-fkn".into(),
            subnet: ctx.subnet.clone(),
            labels: labels(&[(LABEL_LAB, "fkn")]),
        }]
    );
    assert!(ctx.subnet.starts_with("10.99.") && ctx.subnet.ends_with(".0/24"));
    let mut vols: Vec<(String, BTreeMap<String, String>)> = s.volumes.clone();
    vols.sort();
    assert_eq!(
        vols,
        [
            (
                "fkn-manager-1-docker".to_string(),
                labels(&[(LABEL_LAB, "fkn")])
            ),
            (
                "fkn-worker-1-docker".to_string(),
                labels(&[(LABEL_LAB, "fkn")])
            ),
        ]
    );
}

#[test]
fn the_subnet_skips_one_the_host_uses() {
    let free = super::super::pick_subnet("fks", &super::super::host_routes()).unwrap();
    let taken = format!("10.99.{free}.0/24");
    let host = host_with_images();
    host.state.lock().unwrap().networks.push(FakeNetwork {
        name: "someone-elses".into(),
        subnet: taken.clone(),
        labels: BTreeMap::new(),
    });
    let (r, ctx) = run_create(&host, &request("fks", 1, 1, false));
    r.unwrap();
    assert_ne!(ctx.subnet, taken);
    assert!(ctx.nodes[0]
        .address
        .starts_with(&ctx.subnet.replace(".0/24", ".")));
}

#[test]
fn a_missing_node_image_stops_before_anything_is_made() {
    let host = FakeHost::default();
    let (r, _) = run_create(&host, &request("fki", 2, 1, false));
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("scripts/make-lab-node.sh"), "{e}");
    let s = host.snapshot();
    assert_eq!(
        (s.networks.len(), s.volumes.len(), s.containers.len()),
        (0, 0, 0)
    );
    assert!(
        !s.calls.iter().any(|c| c.starts_with("create_")),
        "{:?}",
        s.calls
    );
}

#[test]
fn up_again_on_an_existing_lab_changes_nothing() {
    let host = host_with_images();
    let (r, _) = run_create(&host, &request("fkr", 2, 1, false));
    r.unwrap();
    let before = host.snapshot();
    let err = block_on(up(&host, &request("fkr", 2, 1, false), &quiet())).unwrap_err();
    assert_eq!(exit::code_for(&err), exit::FAILURE);
    assert!(
        err.to_string().contains("lab `fkr` exists (2 containers)"),
        "{err}"
    );
    let after = host.snapshot();
    assert_eq!(after.containers, before.containers);
    assert_eq!(after.networks, before.networks);
    assert_eq!(
        after.calls.len(),
        before.calls.len() + 1,
        "{:?}",
        after.calls
    );
}

#[test]
fn a_failure_halfway_is_reported_and_what_was_made_removed() {
    let host = host_with_images();
    host.state.lock().unwrap().networks.push(FakeNetwork {
        name: "bridge".into(),
        subnet: "172.17.0.0/16".into(),
        labels: BTreeMap::new(),
    });
    host.state.lock().unwrap().fail_node = Some("fkf-worker-1".into());
    let err = block_on(up(&host, &request("fkf", 3, 1, false), &quiet())).unwrap_err();
    assert!(format!("{err:#}").contains("fkf-worker-1"), "{err:#}");
    let s = host.snapshot();
    assert!(
        s.calls.iter().any(|c| c == "run_node fkf-worker-2"),
        "the other nodes were started: {:?}",
        s.calls
    );
    assert_eq!(s.containers.len(), 0, "{:?}", s.containers);
    assert_eq!(s.volumes.len(), 0, "{:?}", s.volumes);
    let nets: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(nets, ["bridge"]);
}

#[test]
fn a_failure_with_retain_keeps_what_was_made() {
    let host = host_with_images();
    host.state.lock().unwrap().fail_node = Some("fkk-worker-1".into());
    block_on(up(&host, &request("fkk", 3, 1, true), &quiet())).unwrap_err();
    let s = host.snapshot();
    let mut names: Vec<&str> = s.containers.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["fkk-manager-1", "fkk-worker-2"]);
    assert_eq!(s.networks.len(), 1);
    assert!(
        !s.calls.iter().any(|c| c.starts_with("remove_")),
        "{:?}",
        s.calls
    );
}

#[test]
fn down_removes_only_what_the_lab_made_and_twice_finds_nothing() {
    let host = host_with_images();
    let (r, _) = run_create(&host, &request("fkd", 3, 1, false));
    r.unwrap();
    let (r, _) = run_create(&host, &request("fko", 1, 1, false));
    r.unwrap();
    host.state.lock().unwrap().networks.push(FakeNetwork {
        name: "unlabelled".into(),
        subnet: "192.168.77.0/24".into(),
        labels: BTreeMap::new(),
    });
    let removed = block_on(remove(&host, "fkd")).unwrap();
    assert_eq!(
        (
            removed.containers,
            removed.volumes,
            removed.networks,
            removed.file
        ),
        (3, 3, 1, false)
    );
    assert_eq!(removed.summary(), "3 containers, 3 volumes, 1 network");
    let s = host.snapshot();
    let names: Vec<&str> = s.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["fko-manager-1"]);
    let mut nets: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
    nets.sort();
    assert_eq!(nets, ["twip-lab-fko", "unlabelled"]);
    let vols: Vec<&str> = s.volumes.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(vols, ["fko-manager-1-docker"]);
    let again = block_on(remove(&host, "fkd")).unwrap();
    assert!(again.is_empty(), "{}", again.summary());
}
