//! The embedded store: persistence, the lock, and its claims.

use super::*;
use crate::mac::MacAddr;
use crate::spec::{BackendOptions, MacvlanMode, MacvlanOptions, NetworkSpec};

fn net(id: &str) -> NetworkRecord {
    NetworkRecord {
        id: id.into(),
        spec: NetworkSpec {
            backend: BackendOptions::Macvlan(MacvlanOptions {
                parent: crate::spec::Parent::Interface {
                    name: "eth0".into(),
                },
                mode: MacvlanMode::Bridge,
            }),
            internal: false,
            ipv4: vec![],
            ipv6: vec![],
            mtu: None,
            options: Default::default(),
            engine: Default::default(),
            host_access: None,
            ipv6_slaac: false,
        },
        created_at: 1,
    }
}

fn ep(n: &str, id: &str) -> EndpointRecord {
    EndpointRecord {
        network_id: n.into(),
        id: id.into(),
        ipv4: Some("10.0.0.2/24".parse().unwrap()),
        ipv6: None,
        mac: Some(MacAddr::from_endpoint_id(id)),
        mac_from_user: false,
        link_name: crate::model::endpoint_link_name(id),
        sandbox_key: None,
        created_at: 2,
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("switchyard-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn survives_reopen_and_deletes_cascade() {
    let dir = tmpdir("reopen");
    {
        let s = Store::open(&dir).unwrap();
        s.put_network(&net("n1")).unwrap();
        s.put_network(&net("n2")).unwrap();
        s.put_endpoint(&ep("n1", "e1")).unwrap();
        s.put_endpoint(&ep("n1", "e2")).unwrap();
        s.put_endpoint(&ep("n2", "e3")).unwrap();
    }
    let s = Store::open(&dir).unwrap();
    assert_eq!(s.networks().len(), 2);
    assert_eq!(s.endpoints("n1").len(), 2);
    assert_eq!(s.endpoint("n2", "e3").unwrap(), ep("n2", "e3"));
    s.delete_network("n1").unwrap();
    s.delete_endpoint("n2", "e3").unwrap();
    s.delete_endpoint("n2", "unknown").unwrap();
    drop(s);
    let s = Store::open(&dir).unwrap();
    assert_eq!(s.networks().len(), 1);
    assert!(s.all_endpoints().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn second_open_names_the_conflict() {
    let dir = tmpdir("lock");
    let _s = Store::open(&dir).unwrap();
    let e = Store::open(&dir)
        .err()
        .expect("second open must fail")
        .to_string();
    assert!(e.contains("in use by another switchyard process"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn claims_are_unique_on_this_host() {
    let dir = tmpdir("claims");
    let s = Store::open(&dir).unwrap();
    let ip: IpAddr = "10.0.0.2".parse().unwrap();
    let claims: &dyn Claims = &s;
    assert!(!claims.cluster_wide());
    assert_eq!(claims.claimed_by("p", ip), None);
    assert!(claims.claim("p", ip, None).await.unwrap());
    assert!(!claims.claim("p", ip, None).await.unwrap());
    assert!(!claims.claim_shared("p", ip).await.unwrap());
    assert!(claims.claim("q", ip, None).await.unwrap(), "another pool");
    assert_eq!(claims.claimed_by("p", ip), Some(Holder::Local));
    assert!(
        s.ipam_claimed("p|10.0.0.2"),
        "the key the store always used"
    );
    claims.release("p", ip).await.unwrap();
    assert_eq!(claims.claimed_by("p", ip), None);
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn owners_survive_a_restart_and_a_released_pool_collects_its_claims() {
    use crate::store::{Asker, Owner};
    let dir = tmpdir("owners");
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let owner = |id: &str, asker: Asker| Owner {
        pool_id: id.into(),
        asker,
    };
    let a_gw = owner("p#a", Asker::Gateway);
    let a_web = owner("p#a", Asker::Endpoint("web".into()));
    let a_unnamed = owner("p#a", Asker::Unnamed);
    let b_web = owner("p#b", Asker::Endpoint("web".into()));
    {
        let s = Store::open(&dir).unwrap();
        let c: &dyn Claims = &s;
        assert!(c.claim("p", ip("10.0.0.1"), Some(&a_gw)).await.unwrap());
        assert!(c.claim("p", ip("10.0.0.2"), Some(&a_web)).await.unwrap());
        assert!(
            c.claim("p", ip("10.0.0.3"), Some(&a_unnamed))
                .await
                .unwrap()
        );
        assert!(c.claim("p", ip("10.0.0.4"), Some(&b_web)).await.unwrap());
        assert!(c.claim("p", ip("10.0.0.5"), None).await.unwrap());
    }
    let s = Store::open(&dir).unwrap();
    let c: &dyn Claims = &s;
    assert_eq!(c.held_by("p", &a_gw), Some(ip("10.0.0.1")));
    assert_eq!(c.held_by("p", &a_web), Some(ip("10.0.0.2")));
    assert_eq!(c.held_by("p", &b_web), Some(ip("10.0.0.4")), "per network");
    assert_eq!(
        c.held_by("p", &a_unnamed),
        None,
        "an unnamed asker is never the same"
    );
    assert_eq!(c.held_by("other", &a_web), None);
    c.release_pool("p", "p#a").await.unwrap();
    for gone in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert_eq!(c.claimed_by("p", ip(gone)), None, "{gone}");
    }
    assert_eq!(c.held_by("p", &a_web), None);
    assert!(
        c.claimed_by("p", ip("10.0.0.4")).is_some(),
        "another network's"
    );
    assert!(
        c.claimed_by("p", ip("10.0.0.5")).is_some(),
        "an old claim without owner"
    );
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}
