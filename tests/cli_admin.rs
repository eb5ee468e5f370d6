//! The operators' `dlm` subcommands against a live node that authenticates: `members`, and,
//! with the admin secret only, `locks`, `sessions` and `revoke`; bad input (the client secret
//! instead of the admin one, a lock nobody holds) fails with the reason and a non-zero status.
#![cfg(all(feature = "cli", unix))]

mod cli_support;

use cli_support::{dlm, output, text};
use dlm::{ClientError, ClusterAccess, ClusterSecret, Rejection, DEFAULT_CLUSTER_ID};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const CLIENT: &str = "the cli test's client secret";
const ADMIN: &str = "the cli test's admin secret!";

fn write_secret(dir: &Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_list_and_revoke_with_the_admin_secret_only() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_admin");
    std::fs::create_dir_all(&dir).unwrap();
    let client_file = write_secret(&dir, "client", CLIENT);
    let admin_file = write_secret(&dir, "admin", ADMIN);
    let server = dlm::Server::builder()
        .id(1)
        .secret(ClusterSecret::new(CLIENT).unwrap())
        .admin_secret(ClusterSecret::new(ADMIN).unwrap())
        .peer_secret(ClusterSecret::new("the members' own secret").unwrap())
        .serve_tcp("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let nodes = format!("1={addr}");
    let access = ClusterAccess::new(DEFAULT_CLUSTER_ID).secret(ClusterSecret::new(CLIENT).unwrap());
    let user = dlm::connect_tcp_with([(1, addr)], access, |_| {});
    let guard = user.lock("jobs/a").await.unwrap();
    let token = guard.token().to_string();

    let admin = ["--nodes", &nodes, "--admin-secret-file", &admin_file];
    let out = output(dlm(&[
        "members",
        "--nodes",
        &nodes,
        "--secret-file",
        &client_file,
    ]))
    .await;
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("Leader"), "{out:?}");

    let refused = output(dlm(&[
        "locks",
        "--nodes",
        &nodes,
        "--secret-file",
        &client_file,
    ]))
    .await;
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        text(&refused.stderr).contains("not authorized"),
        "{refused:?}"
    );

    let out = output(dlm(&[&["locks", "jobs/"][..], &admin].concat())).await;
    assert!(out.status.success(), "{out:?}");
    let listing = text(&out.stdout);
    let row = listing
        .lines()
        .find(|l| l.starts_with("jobs/a "))
        .unwrap_or_else(|| panic!("no row for jobs/a in {listing}"));
    assert!(row.contains(&format!("{:032x}", user.id().0)), "{row}");
    assert!(row.split_whitespace().any(|w| w == token), "{row}");
    let out = output(dlm(&[&["locks", "other/"][..], &admin].concat())).await;
    assert_eq!(text(&out.stdout).lines().count(), 1, "{out:?}");

    // Paging: with three held, --limit 2 prints two and says where it stopped; 0 prints all.
    let _b = user.lock("jobs/b").await.unwrap();
    let _c = user.lock("jobs/c").await.unwrap();
    let limited = ["locks", "jobs/", "--limit", "2"];
    let out = output(dlm(&[&limited[..], &admin].concat())).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).lines().count(), 3, "{out:?}");
    assert!(
        text(&out.stderr).contains("stopped at --limit 2; more after jobs/b"),
        "{out:?}"
    );
    let all = ["locks", "jobs/", "--limit", "0"];
    let out = output(dlm(&[&all[..], &admin].concat())).await;
    assert_eq!(text(&out.stdout).lines().count(), 4, "{out:?}");

    let out = output(dlm(&[&["sessions"][..], &admin].concat())).await;
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("jobs/a"), "{out:?}");

    let out = output(dlm(&[&["revoke", "jobs/a"][..], &admin].concat())).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("token {token}")),
        "{out:?}"
    );
    assert_eq!(
        user.append(&guard, "jobs/a.log", b"late\n".to_vec()).await,
        Err(ClientError::Rejected(Rejection::Revoked {
            token: guard.token()
        }))
    );

    let again = output(dlm(&[&["revoke", "jobs/a"][..], &admin].concat())).await;
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(text(&again.stderr).contains("not held"), "{again:?}");
    // Still serving.
    let out = output(dlm(&[&["locks"][..], &admin].concat())).await;
    assert!(out.status.success(), "{out:?}");
    server.shutdown().await.unwrap();
}

/// `dlm members` shows the configuration in force; `members add`, `promote` and `remove`
/// change it, and a refused change says why (here a learner that never answered: nothing
/// listens at its address).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_listed_added_refused_promotion_and_removed() {
    let server = dlm::Server::builder()
        .id(1)
        .serve_tcp("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let nodes = format!("1={}", server.local_addr().unwrap());
    let cluster = ["--nodes", nodes.as_str()];
    let out = output(dlm(&[&["members"][..], &cluster].concat())).await;
    assert!(out.status.success(), "{out:?}");
    // The node's own address is in the configuration it started with.
    assert!(
        text(&out.stdout).contains(&format!("configuration: voters {nodes}; learners none")),
        "{out:?}"
    );

    let add = ["members", "add", "2", "127.0.0.1:9"];
    let out = output(dlm(&[&add[..], &cluster].concat())).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("voters {nodes}; learners 2=127.0.0.1:9")),
        "{out:?}"
    );
    let promote = ["members", "promote", "2"];
    let out = output(dlm(&[&promote[..], &cluster].concat())).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("has not caught up"), "{out:?}");
    // A replacement whose new node never answers stops at the promotion, typed; the learner
    // it added stays, and a rerun finds it added.
    let replace = [
        "members",
        "replace",
        "1",
        "2",
        "127.0.0.1:9",
        "--catch-up-secs",
        "1",
    ];
    let out = output(dlm(&[&replace[..], &cluster].concat())).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("did not catch up"), "{out:?}");
    let remove = ["members", "remove", "2"];
    let out = output(dlm(&[&remove[..], &cluster].concat())).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        text(&out.stdout).contains(&format!("voters {nodes}; learners none")),
        "{out:?}"
    );
    server.shutdown().await.unwrap();
}
