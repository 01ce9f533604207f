//! The deploy lock through the in-memory swarm (no daemon): taken, refused with exit 6 and
//! the holder, waited for, released on every way out, taken over when stale.

mod fake_support;

use std::sync::Mutex;
use std::time::Duration;

use fake_support::{code, World, APP};
use twip::lifecycle::lock::{self, Operation};

const STACK: &str = "driftfixture";

fn alice() -> Operation {
    Operation {
        command: "up".into(),
        user: "alice".into(),
        host: "laptop".into(),
        reason: "hotfix 7".into(),
        hooks: true,
    }
}

fn bob() -> Operation {
    Operation {
        command: "up".into(),
        user: "bob".into(),
        host: "ci-runner".into(),
        reason: String::new(),
        hooks: true,
    }
}

#[tokio::test]
async fn acquire_shows_the_holder_and_release_frees_it() {
    let w = World::new();
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_none());
    let held = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    let (h, stale) = lock::status(&w.fake, STACK).await.unwrap().unwrap();
    assert!(!stale);
    assert_eq!((h.user.as_str(), h.host.as_str()), ("alice", "laptop"));
    assert_eq!((h.command.as_str(), h.reason.as_str()), ("up", "hotfix 7"));
    assert_eq!(h.ttl, 30 * 60);
    assert_eq!(
        lock::describe(&h),
        "locked by alice@laptop since 2026-01-01T00:00:00Z (up: hotfix 7)"
    );
    // It is a config of its own, outside the stack's namespace.
    assert!(w.fake.names()["config"].contains(&"twip-lock-driftfixture".to_string()));
    assert!(lock::release(&w.fake, &held).await.unwrap());
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_none());
    assert!(!w.fake.names()["config"].contains(&"twip-lock-driftfixture".to_string()));
}

#[tokio::test]
async fn a_second_operator_gets_exit_6_with_the_holder_and_nothing_changes() {
    let w = World::new();
    let _held = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    w.fake.clear_calls();
    let env = w.env();
    let r = lock::with_lock(&w.fake, STACK, bob(), None, lock::TTL, &w.ui, w.up(&env)).await;
    assert_eq!(code(&r), 6, "{r:?}");
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.starts_with("driftfixture: locked by alice@laptop since 2026-01-01T00:00:00Z (up: hotfix 7); nothing was changed"),
        "{msg}"
    );
    // Not one change reached the swarm (the refused create of the lock changes nothing),
    // and alice still holds the lock.
    assert_eq!(w.fake.calls(), Vec::<String>::new());
    assert!(w.fake.inspect(APP).is_none());
    let (h, _) = lock::status(&w.fake, STACK).await.unwrap().unwrap();
    assert_eq!(h.user, "alice");
}

#[tokio::test]
async fn with_lock_wait_the_second_runs_after_the_first() {
    let w = World::new();
    let env = w.env();
    let events = Mutex::new(Vec::<String>::new());
    let say = |e: &str| events.lock().unwrap().push(e.to_string());
    let first = lock::with_lock(&w.fake, STACK, alice(), None, lock::TTL, &w.ui, async {
        say("first started");
        let r = w.up(&env).await;
        say("first done");
        r
    });
    let second = async {
        // Let the first take the lock.
        tokio::task::yield_now().await;
        let r = lock::with_lock(
            &w.fake,
            STACK,
            bob(),
            // Fake time: a wait costs polls, not seconds; a day leaves the first all the turns it
            // needs (5 minutes of fake polls ran out first in 5 of 20 runs under load).
            Some(Duration::from_secs(86_400)),
            lock::TTL,
            &w.ui,
            async {
                say("second started");
                let holder = lock::status(&w.fake, STACK).await?.unwrap().0;
                say(&format!("second holds it as {}", holder.user));
                Ok(0)
            },
        )
        .await;
        say("second done");
        r
    };
    let (a, b) = tokio::join!(first, second);
    assert_eq!(code(&a), 0, "{a:?}");
    assert_eq!(code(&b), 0, "{b:?}");
    assert_eq!(
        events.into_inner().unwrap(),
        [
            "first started",
            "first done",
            "second started",
            "second holds it as bob",
            "second done"
        ]
    );
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_none());
}

#[tokio::test]
async fn waiting_gives_up_with_exit_6_at_the_deadline() {
    let w = World::new();
    let _held = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    let before = w.fake.now_for_tests();
    let wait = Duration::from_secs(60);
    let r = lock::acquire(&w.fake, STACK, &bob(), Some(wait), lock::TTL, &w.ui).await;
    let err = r.unwrap_err();
    assert_eq!(twip::exit::code_for(&err), 6);
    assert!(
        err.to_string()
            .contains("still locked by alice@laptop since 2026-01-01T00:00:00Z (up: hotfix 7) after waiting 1m"),
        "{err}"
    );
    let waited = w.fake.now_for_tests().duration_since(before).unwrap();
    assert_eq!(waited, wait);
}

#[tokio::test]
async fn the_lock_is_released_when_the_command_fails() {
    let w = World::new();
    w.fake.behave(
        APP,
        twip::engine::fake::Behaviour::CrashLoop { exit_code: 2 },
    );
    let env = w.env();
    let r = lock::with_lock(&w.fake, STACK, alice(), None, lock::TTL, &w.ui, w.up(&env)).await;
    assert_eq!(code(&r), 1, "{r:?}");
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_none());
    // And an error before any change releases it too.
    let r = lock::with_lock(&w.fake, STACK, alice(), None, lock::TTL, &w.ui, async {
        Err::<i32, _>(twip::exit::invalid("bad input"))
    })
    .await;
    assert_eq!(code(&r), 2);
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_none());
}

#[tokio::test]
async fn a_stale_lock_is_taken_over_and_its_holder_cannot_release_the_new_one() {
    let w = World::new();
    let old = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    // Not stale a minute before its time.
    w.fake.pass(lock::TTL - Duration::from_secs(60));
    let r = lock::acquire(&w.fake, STACK, &bob(), None, lock::TTL, &w.ui).await;
    assert_eq!(twip::exit::code_for(&r.unwrap_err()), 6);
    w.fake.pass(Duration::from_secs(60));
    let (_, stale) = lock::status(&w.fake, STACK).await.unwrap().unwrap();
    assert!(stale);
    let new = lock::acquire(&w.fake, STACK, &bob(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    assert_eq!(new.holder.user, "bob");
    // The killed twip's release (had it come back) does not free bob's lock.
    assert!(!lock::release(&w.fake, &old).await.unwrap());
    let (h, stale) = lock::status(&w.fake, STACK).await.unwrap().unwrap();
    assert_eq!((h.user.as_str(), stale), ("bob", false));
}

#[tokio::test]
async fn a_longer_timeout_makes_a_longer_lock() {
    assert_eq!(lock::ttl_for(Duration::from_secs(300)), lock::TTL);
    assert_eq!(
        lock::ttl_for(Duration::from_secs(3600)),
        Duration::from_secs(3600 + 600)
    );
}

#[tokio::test]
async fn release_by_hand_is_for_the_holder_or_with_force() {
    let w = World::new();
    lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    let r = lock::release_by_hand(&w.fake, STACK, &bob(), false).await;
    let err = r.unwrap_err();
    assert_eq!(twip::exit::code_for(&err), 6);
    assert!(err.to_string().contains("--force"), "{err}");
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_some());
    let gone = lock::release_by_hand(&w.fake, STACK, &bob(), true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.user, "alice");
    assert!(lock::status(&w.fake, STACK).await.unwrap().is_none());
    // Alice releases her own without --force; nothing held: nothing to do.
    lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    assert!(lock::release_by_hand(&w.fake, STACK, &alice(), false)
        .await
        .unwrap()
        .is_some());
    assert!(lock::release_by_hand(&w.fake, STACK, &alice(), false)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_lock_left_by_this_process_is_taken_back_one_of_another_process_is_not() {
    let w = World::new();
    // An earlier attempt of this command took the lock through a manager that then went away,
    // so it was never released: the retry through another manager takes it back.
    let _left = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    let again = lock::acquire(&w.fake, STACK, &alice(), None, lock::TTL, &w.ui)
        .await
        .unwrap();
    let (h, _) = lock::status(&w.fake, STACK).await.unwrap().unwrap();
    assert_eq!(h.token, again.holder.token);
    // The same user and host in another process (another twip) is refused with exit 6.
    let mut other = h.clone();
    other.token = format!("laptop-{}-1", std::process::id() + 1);
    assert!(!lock::taken_by_this_process(&other, &alice()));
    assert!(lock::taken_by_this_process(&h, &alice()));
    let e = lock::acquire(&w.fake, STACK, &bob(), None, lock::TTL, &w.ui)
        .await
        .map(|_| 0);
    assert_eq!(code(&e), 6, "{e:?}");
}
