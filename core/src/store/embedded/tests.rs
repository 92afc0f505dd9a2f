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
    assert!(claims.claim("p", ip).await.unwrap());
    assert!(!claims.claim("p", ip).await.unwrap());
    assert!(!claims.claim_shared("p", ip).await.unwrap());
    assert!(claims.claim("q", ip).await.unwrap(), "another pool");
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
