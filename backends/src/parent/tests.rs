//! The parent decisions that need no kernel: who shares a parent, which
//! networks may share one, the MTU limit, the gateway answer, the L2 answer.

use super::checks::{check_mtu, conflict, gateway_allocation, uses};
use super::{gateways, in_use, link_name};
use switchyard_core::model::{EndpointRecord, NetworkRecord};
use switchyard_core::spec::{
    BackendOptions, Engine, IpvlanFlag, IpvlanMode, IpvlanOptions, MacvlanMode, MacvlanOptions,
    NetworkSpec, Parent, Subnet,
};

fn spec(backend: BackendOptions, internal: bool, mtu: Option<u32>) -> NetworkSpec {
    NetworkSpec {
        backend,
        internal,
        ipv4: vec![Subnet {
            pool: "10.9.0.0/24".parse().unwrap(),
            gateway: Some("10.9.0.1".parse().unwrap()),
        }],
        ipv6: vec![Subnet {
            pool: "fd00:9::/64".parse().unwrap(),
            gateway: Some("fd00:9::1".parse().unwrap()),
        }],
        mtu,
        options: Default::default(),
        engine: Default::default(),
        host_access: None,
        ipv6_slaac: false,
    }
}

fn macvlan(parent: &str, mode: MacvlanMode) -> BackendOptions {
    BackendOptions::Macvlan(MacvlanOptions {
        parent: Parent::parse(parent).unwrap(),
        mode,
    })
}

fn ipvlan(parent: &str, mode: IpvlanMode, flag: IpvlanFlag) -> BackendOptions {
    BackendOptions::Ipvlan(IpvlanOptions {
        parent: Parent::parse(parent).unwrap(),
        mode,
        flag,
    })
}

fn record(id: &str, s: NetworkSpec) -> NetworkRecord {
    NetworkRecord {
        id: id.into(),
        spec: s,
        created_at: 0,
    }
}

fn isolated(id: &str) -> NetworkRecord {
    record(
        id,
        spec(
            BackendOptions::Macvlan(MacvlanOptions {
                parent: Parent::Isolated { name: None },
                mode: MacvlanMode::Bridge,
            }),
            true,
            None,
        ),
    )
}

#[test]
fn a_parent_is_shared_by_name_and_isolated_parents_never() {
    let on_vlan = record(
        "a",
        spec(macvlan("eth0.30", MacvlanMode::Bridge), false, None),
    );
    assert!(uses(&on_vlan, &Parent::parse("eth0.30").unwrap()));
    assert!(!uses(&on_vlan, &Parent::parse("eth0.31").unwrap()));
    assert!(!uses(&on_vlan, &Parent::parse("eth0").unwrap()));
    assert!(!uses(&isolated("b"), &Parent::Isolated { name: None }));
    assert!(!uses(&on_vlan, &Parent::Isolated { name: None }));
}

#[test]
fn passthru_takes_a_parent_alone_in_either_order() {
    let bridge = record(
        "n1",
        spec(macvlan("eth0", MacvlanMode::Bridge), false, None),
    );
    let passthru = record(
        "n2",
        spec(macvlan("eth0", MacvlanMode::Passthru), false, None),
    );
    let e = conflict(&passthru.spec, &bridge).unwrap();
    assert!(
        e.contains("passthru mode serves exactly one network"),
        "{e}"
    );
    let e = conflict(&bridge.spec, &passthru).unwrap();
    assert!(e.contains("macvlan_mode=passthru"), "{e}");
    let vepa = spec(macvlan("eth0", MacvlanMode::Vepa), false, None);
    assert_eq!(
        conflict(&vepa, &bridge),
        None,
        "macvlan modes other than passthru mix"
    );
}

#[test]
fn ipvlan_networks_on_one_parent_share_mode_and_flag() {
    let l2 = record(
        "n1",
        spec(
            ipvlan("eth0", IpvlanMode::L2, IpvlanFlag::Bridge),
            false,
            None,
        ),
    );
    let same = spec(
        ipvlan("eth0", IpvlanMode::L2, IpvlanFlag::Bridge),
        false,
        None,
    );
    assert_eq!(conflict(&same, &l2), None);
    let l3 = spec(
        ipvlan("eth0", IpvlanMode::L3, IpvlanFlag::Bridge),
        false,
        None,
    );
    let e = conflict(&l3, &l2).unwrap();
    assert!(e.contains("ipvlan_mode=l2 ipvlan_flag=bridge"), "{e}");
    let private = spec(
        ipvlan("eth0", IpvlanMode::L2, IpvlanFlag::Private),
        false,
        None,
    );
    assert!(conflict(&private, &l2).is_some());
}

#[test]
fn macvlan_and_ipvlan_never_share_a_parent() {
    let m = record(
        "n1",
        spec(macvlan("eth0", MacvlanMode::Bridge), false, None),
    );
    let i = spec(
        ipvlan("eth0", IpvlanMode::L2, IpvlanFlag::Bridge),
        false,
        None,
    );
    let e = conflict(&i, &m).unwrap();
    assert!(
        e.contains("of backend macvlan") && e.contains("eth0.31"),
        "{e}"
    );
}

#[test]
fn the_mtu_may_not_exceed_the_parents() {
    let s = spec(macvlan("eth0", MacvlanMode::Bridge), false, Some(9000));
    let e = check_mtu(&s, Some(1500)).unwrap_err().to_string();
    assert!(
        e.contains("use at most 1500") && e.contains("parent eth0"),
        "{e}"
    );
    check_mtu(&s, Some(9000)).unwrap();
    check_mtu(&s, None).unwrap();
    check_mtu(
        &spec(macvlan("eth0", MacvlanMode::Bridge), false, None),
        Some(1500),
    )
    .unwrap();
}

/// GetSkipGwAlloc of the engines' built-in drivers (moby v28.5.2 and
/// docker-v29.7.2, daemon/libnetwork/drivers/{macvlan,ipvlan}).
#[test]
fn gateways_are_reserved_as_each_engines_builtin_drivers_do() {
    let reserve = |b: BackendOptions, internal: bool, engine: Engine| {
        let mut s = spec(b, internal, None);
        s.engine = engine;
        let g = gateway_allocation(&s);
        assert_eq!(g.ipv4, g.ipv6);
        g.ipv4
    };
    let mv = || macvlan("eth0", MacvlanMode::Bridge);
    let iv = |m| ipvlan("eth0", m, IpvlanFlag::Bridge);
    for engine in [Engine::Unknown, Engine::V20, Engine::V28] {
        assert!(reserve(mv(), false, engine));
        assert!(!reserve(mv(), true, engine));
        assert!(reserve(iv(IpvlanMode::L2), false, engine));
        assert!(!reserve(iv(IpvlanMode::L2), true, engine));
        assert!(!reserve(iv(IpvlanMode::L3), false, engine));
        assert!(!reserve(iv(IpvlanMode::L3s), false, engine));
    }
    // 29: only a gateway the user gives (IPAM reserves that one itself).
    for internal in [false, true] {
        assert!(!reserve(mv(), internal, Engine::V29));
        for m in [IpvlanMode::L2, IpvlanMode::L3, IpvlanMode::L3s] {
            assert!(!reserve(iv(m), internal, Engine::V29));
        }
    }
}

#[test]
fn the_l2_answer_picks_the_gateway_of_the_endpoints_subnet() {
    let mut s = spec(macvlan("eth0", MacvlanMode::Bridge), false, None);
    s.ipv4.push(Subnet {
        pool: "10.10.0.0/24".parse().unwrap(),
        gateway: Some("10.10.0.254".parse().unwrap()),
    });
    let net = record("n1", s);
    let ep = EndpointRecord {
        network_id: "n1".into(),
        id: "e1".into(),
        ipv4: Some("10.10.0.7/24".parse().unwrap()),
        ipv6: None,
        mac: None,
        mac_from_user: false,
        link_name: "sye1".into(),
        sandbox_key: None,
        created_at: 0,
    };
    let (v4, v6) = gateways(&net, &ep);
    assert_eq!(v4, Some("10.10.0.254".parse().unwrap()));
    assert_eq!(v6, None, "no IPv6 address, no IPv6 gateway");
}

#[test]
fn users_of_a_parent_are_the_stored_networks_that_name_it() {
    let a = record(
        "n1",
        spec(macvlan("eth0.30", MacvlanMode::Bridge), false, None),
    );
    let b = isolated("0123456789abcdef");
    assert_eq!(link_name(&b).as_deref(), Some("sd0123456789ab"));
    assert!(in_use("eth0.30", &[a.clone(), b.clone()]));
    assert!(in_use("sd0123456789ab", &[a.clone(), b]));
    assert!(!in_use("eth0.31", &[a]));
}
