use super::*;
use crate::protocol::{CreateNetworkRequest, OPT_ENABLE_IPV6, OPT_INTERNAL};
use serde_json::json;

fn req(generic: serde_json::Value) -> CreateNetworkRequest {
    serde_json::from_value(json!({
        "NetworkID": "n1",
        "Options": {"com.docker.network.enable_ipv6": false, "com.docker.network.generic": generic},
        "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "10.77.0.0/24", "Gateway": "10.77.0.1/24"}],
        "IPv6Data": []
    }))
    .unwrap()
}

fn err(generic: serde_json::Value, policy: &Policy) -> String {
    parse_network(&req(generic), policy)
        .unwrap_err()
        .to_string()
}

#[test]
fn parses_a_macvlan_network() {
    let s = parse_network(
        &req(
            json!({"backend": "macvlan", "parent": "tp0", "macvlan_mode": "vepa", OPT_MTU: "1400"}),
        ),
        &Policy::default(),
    )
    .unwrap();
    assert_eq!(
        s.backend,
        BackendOptions::Macvlan(MacvlanOptions {
            parent: Parent::Interface { name: "tp0".into() },
            mode: MacvlanMode::Vepa
        })
    );
    assert_eq!(s.mtu, Some(1400));
    assert!(!s.internal);
    assert_eq!(s.ipv4[0].pool.to_string(), "10.77.0.0/24");
    assert_eq!(s.ipv4[0].gateway.unwrap().to_string(), "10.77.0.1");
    assert!(s.ipv6.is_empty());
}

#[test]
fn every_option_error_names_the_problem_and_the_fix() {
    let p = Policy::default();
    let cases: &[(serde_json::Value, &[&str])] = &[
        (
            json!({"backend": "nope"}),
            &[
                "backend \"nope\" is not known",
                "use one of: macvlan, ipvlan, vxlan",
            ],
        ),
        (
            json!({"parent": "tp0"}),
            &[
                "option \"backend\" is required",
                "-o backend=macvlan",
                "--config-only",
                "--config-from",
            ],
        ),
        (
            json!({"backend": "macvlan", "parent": "tp0", "macvlan_mode": "x"}),
            &[
                "macvlan_mode \"x\" is not valid",
                "bridge, vepa, private, passthru",
            ],
        ),
        (
            json!({"backend": "macvlan", "parent": "tp0", "foo": "bar"}),
            &[
                "option \"foo\" is not known",
                "backend macvlan accepts: backend, parent, macvlan_mode",
            ],
        ),
        (
            json!({"backend": "macvlan", "parent": "tp0", "ipvlan_mode": "l2"}),
            &["\"ipvlan_mode\" belongs to backend ipvlan, not macvlan"],
        ),
        (
            json!({"backend": "macvlan", "parent": "tp0", "vni": "5"}),
            &["\"vni\" belongs to backend vxlan"],
        ),
        (
            json!({"backend": "ipvlan", "parent": "tp0", "ipvlan_mode": "l4"}),
            &["ipvlan_mode \"l4\" is not valid", "l2, l3, l3s"],
        ),
        (
            json!({"backend": "ipvlan", "parent": "tp0", "ipvlan_flag": "x"}),
            &["ipvlan_flag \"x\" is not valid", "bridge, private, vepa"],
        ),
        (
            json!({"backend": "ipvlan", "parent": "tp0", "macvlan_mode": "vepa"}),
            &["\"macvlan_mode\" belongs to backend macvlan, not ipvlan"],
        ),
        (
            json!({"backend": "macvlan", "parent": "eth0.0"}),
            &["names VLAN 0, which is outside 1–4094"],
        ),
        (
            json!({"backend": "macvlan", "parent": "eth0.4095"}),
            &["VLAN 4095", "e.g. eth0.30"],
        ),
        (
            json!({"backend": "ipvlan", "parent": "eth0.99999"}),
            &["VLAN 99999"],
        ),
        (
            json!({"backend": "macvlan", "parent": "averyveryverylongname"}),
            &[
                "parent \"averyveryverylongname\" is not a valid interface name",
                "at most 15 bytes",
            ],
        ),
        (
            json!({"backend": "macvlan", "parent": "et/h0"}),
            &["not a valid interface name", "'/'"],
        ),
        (
            json!({"backend": "macvlan", "parent": "lo"}),
            &["parent \"lo\" cannot carry"],
        ),
        (
            json!({"backend": "macvlan", "parent": "tp0", OPT_MTU: "big"}),
            &["\"big\" is not a number", "between 68 and 65535"],
        ),
        (
            json!({"backend": "macvlan", "parent": "tp0", OPT_MTU: "70000"}),
            &["70000 is out of range"],
        ),
        (
            json!({"backend": "vxlan", "vni": "0"}),
            &["vni 0 is out of range", "1 to 16777215"],
        ),
        (
            json!({"backend": "vxlan", "vni": "16777216"}),
            &["vni 16777216 is out of range"],
        ),
        (
            json!({"backend": "vxlan", "vni": "x"}),
            &["vni \"x\" is not a number"],
        ),
        (
            json!({"backend": "vxlan", "vni": "5", OPT_VXLANID_LIST: "6"}),
            &["disagree"],
        ),
        (
            json!({"backend": "vxlan", OPT_VXLANID_LIST: "5,6"}),
            &["names 2 VNIs"],
        ),
        (
            json!({"backend": "vxlan", "peers": "10.0.0.1,nope"}),
            &["peers: \"nope\" is not an IP address"],
        ),
        (
            json!({"backend": "vxlan", "peers": "127.0.0.1"}),
            &["cannot be a VTEP"],
        ),
        (
            json!({"backend": "vxlan", "parent": "eth0"}),
            &["\"parent\" belongs to backend macvlan"],
        ),
    ];
    for (generic, wants) in cases {
        let e = err(generic.clone(), &p);
        for w in *wants {
            assert!(e.contains(w), "for {generic}: {e:?} should contain {w:?}");
        }
    }
}

#[test]
fn policy_supplies_defaults_and_guards_parents() {
    let p = Policy {
        default_backend: Some(BackendKind::Macvlan),
        macvlan_parent: Some("tp0".into()),
        macvlan_mode: MacvlanMode::Private,
        allowed_parents: vec!["tp0".into(), "bond*".into()],
        ..Policy::default()
    };
    let s = parse_network(&req(json!({})), &p).unwrap();
    assert_eq!(
        s.backend,
        BackendOptions::Macvlan(MacvlanOptions {
            parent: Parent::Interface { name: "tp0".into() },
            mode: MacvlanMode::Private
        })
    );
    parse_network(&req(json!({"parent": "bond3"})), &p).unwrap();
    let e = err(json!({"parent": "eth1"}), &p);
    assert!(
        e.contains("parent \"eth1\" is not allowed") && e.contains("tp0, bond*"),
        "{e}"
    );
}

#[test]
fn docker_reserved_keys_are_accepted() {
    parse_network(
        &req(json!({"backend": "macvlan", "parent": "tp0",
                    "com.docker.network.enable_ipv6": "true",
                    "com.docker.network.advertise_addr_nmsgs": "1"})),
        &Policy::default(),
    )
    .unwrap();
}

#[test]
fn ipam_data_is_checked() {
    let mut r = req(json!({"backend": "macvlan", "parent": "tp0"}));
    r.ipv4_data[0].gateway = Some("10.99.0.1/24".into());
    let e = parse_network(&r, &Policy::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("gateway 10.99.0.1 is outside subnet 10.77.0.0/24"),
        "{e}"
    );
    // The null IPAM driver's 0.0.0.0/0 pool means "no addresses managed".
    r.ipv4_data[0] = crate::protocol::IpamData {
        pool: "0.0.0.0/0".into(),
        ..Default::default()
    };
    assert!(
        parse_network(&r, &Policy::default())
            .unwrap()
            .ipv4
            .is_empty()
    );
    // Engine 28 with GwAllocCheck skip: no gateway.
    r.ipv4_data[0] = crate::protocol::IpamData {
        pool: "10.1.0.0/16".into(),
        ..Default::default()
    };
    assert_eq!(
        parse_network(&r, &Policy::default()).unwrap().ipv4[0].gateway,
        None
    );
}

#[test]
fn ipv6_needs_a_large_enough_mtu() {
    let mut r = req(json!({"backend": "macvlan", "parent": "tp0", OPT_MTU: "1000"}));
    r.options.insert(OPT_ENABLE_IPV6.into(), json!(true));
    r.ipv6_data = vec![crate::protocol::IpamData {
        pool: "fd00:1::/64".into(),
        gateway: Some("fd00:1::1/64".into()),
        ..Default::default()
    }];
    let e = parse_network(&r, &Policy::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("too small for IPv6") && e.contains("1280"),
        "{e}"
    );
}

#[test]
fn internal_flag_is_read() {
    let mut r = req(json!({"backend": "macvlan", "parent": "tp0"}));
    r.options.insert(OPT_INTERNAL.into(), json!(true));
    assert!(parse_network(&r, &Policy::default()).unwrap().internal);
}

#[test]
fn parents_vlans_and_isolated_networks() {
    let p = Policy::default();
    let parse = |g: serde_json::Value, internal: bool| {
        let mut r = req(g);
        if internal {
            r.options.insert(OPT_INTERNAL.into(), json!(true));
        }
        parse_network(&r, &p)
    };
    let s = parse(
        json!({"backend": "ipvlan", "parent": "eth0.30", "ipvlan_mode": "l3"}),
        false,
    )
    .unwrap();
    assert_eq!(
        s.backend,
        BackendOptions::Ipvlan(IpvlanOptions {
            parent: Parent::Vlan {
                name: "eth0.30".into(),
                base: "eth0".into(),
                id: 30
            },
            mode: IpvlanMode::L3,
            flag: IpvlanFlag::Bridge,
        })
    );
    // Dotted names that are not <link>.<number> are plain interfaces.
    for name in ["br.lan", "a.b.1"] {
        let s = parse(json!({"backend": "macvlan", "parent": name}), false).unwrap();
        assert_eq!(
            s.backend.parent(),
            Some(&Parent::Interface { name: name.into() })
        );
    }
    // No parent: a private one, internal or not (as the built-in drivers).
    for internal in [true, false] {
        for backend in ["macvlan", "ipvlan"] {
            let s = parse(json!({ "backend": backend }), internal).unwrap();
            assert_eq!(
                s.backend.parent(),
                Some(&Parent::Isolated {
                    name: Some(isolated_parent_name("n1"))
                })
            );
        }
    }
    // Records from before names were kept: `sd` + 12 characters of the ID.
    assert_eq!(
        Parent::Isolated { name: None }.link_name("0123456789abcdef"),
        "sd0123456789ab"
    );
    // New ones: a hash of the whole ID, so a shared prefix shares nothing.
    let (a, b) = (
        isolated_parent_name(&format!("{}0", "ab".repeat(6))),
        isolated_parent_name(&format!("{}1", "ab".repeat(6))),
    );
    assert_ne!(a, b);
    assert!(a.len() == 15 && a.starts_with("sd"), "{a}");
    assert_eq!(a, isolated_parent_name(&format!("{}0", "ab".repeat(6))));
    assert_eq!(
        Parent::parse("eth0.30").unwrap().host_interface(),
        Some("eth0")
    );
    // The allow-list admits a VLAN of an allowed interface.
    let p2 = Policy {
        allowed_parents: vec!["eth0".into()],
        ..Policy::default()
    };
    parse_network(
        &req(json!({"backend": "macvlan", "parent": "eth0.30"})),
        &p2,
    )
    .unwrap();
}

#[test]
fn vxlan_options() {
    let p = Policy::default();
    let s = parse_network(
        &req(json!({"backend": "vxlan", "vni": "5001", "peers": "192.0.2.2, 192.0.2.3"})),
        &p,
    )
    .unwrap();
    assert_eq!(
        s.backend,
        BackendOptions::Vxlan(VxlanOptions {
            vni: Some(5001),
            peers: vec!["192.0.2.2".parse().unwrap(), "192.0.2.3".parse().unwrap()],
            encrypted: false
        })
    );
    let s = parse_network(
        &req(json!({"backend": "vxlan", OPT_VXLANID_LIST: "4097"})),
        &p,
    )
    .unwrap();
    assert_eq!(
        s.backend,
        BackendOptions::Vxlan(VxlanOptions {
            vni: Some(4097),
            peers: vec![],
            encrypted: false
        })
    );
    let s = parse_network(&req(json!({"backend": "vxlan"})), &p).unwrap();
    assert_eq!(
        s.backend,
        BackendOptions::Vxlan(VxlanOptions {
            vni: None,
            peers: vec![],
            encrypted: false
        })
    );
}

/// A CreateNetwork as an engine sends it: 20.10 without enable_ipv4, 29
/// with `AuxAddresses: {}` on a --subnet pool (dockerd-*/calls.jsonl).
fn engine_req(enable_ipv4: bool, aux: Option<serde_json::Value>) -> CreateNetworkRequest {
    let mut pool = json!({"AddressSpace": "LocalDefault", "Pool": "10.77.0.0/24"});
    if let Some(a) = aux {
        pool["AuxAddresses"] = a;
    }
    let mut options = json!({"com.docker.network.generic": {"backend": "macvlan"}});
    if enable_ipv4 {
        options["com.docker.network.enable_ipv4"] = json!(true);
    }
    serde_json::from_value(
        json!({"NetworkID": "n1", "Options": options, "IPv4Data": [pool], "IPv6Data": []}),
    )
    .unwrap()
}

#[test]
fn the_engine_is_read_from_the_request() {
    let p = Policy::default();
    let engine = |r: &CreateNetworkRequest| parse_network(r, &p).unwrap().engine;
    assert_eq!(engine(&engine_req(false, None)), Engine::V20);
    assert_eq!(engine(&engine_req(false, Some(json!({})))), Engine::V20);
    assert_eq!(engine(&engine_req(true, Some(json!({})))), Engine::V29);
    // 28 sends AuxAddresses only with --aux-address; so may 29.
    assert_eq!(engine(&engine_req(true, None)), Engine::Unknown);
    assert_eq!(
        engine(&engine_req(true, Some(json!({"h": "10.77.0.9"})))),
        Engine::Unknown
    );
    assert_eq!(
        engine(&engine_req(true, Some(json!(null)))),
        Engine::Unknown
    );
}

#[test]
fn the_engine_to_answer_as() {
    let auto = Policy::default();
    // Nothing learnt: 28 (GwAllocCheck and enable_ipv4 mean 28 or later).
    assert_eq!(auto.engine(Engine::Unknown, &[]), Engine::V28);
    assert_eq!(auto.engine(Engine::V20, &[]), Engine::V20);
    assert_eq!(auto.engine(Engine::V29, &[]), Engine::V29);
    // The store: the latest decisive evidence.
    let stored = [(1, Engine::V29), (2, Engine::V28), (3, Engine::Unknown)];
    assert_eq!(auto.engine(Engine::Unknown, &stored), Engine::V29);
    let upgraded = [(1, Engine::V20), (2, Engine::V29)];
    assert_eq!(auto.engine(Engine::Unknown, &upgraded), Engine::V29);
    let downgraded = [(1, Engine::V29), (2, Engine::V20)];
    assert_eq!(auto.engine(Engine::Unknown, &downgraded), Engine::V28);
    // This lifetime's memory outlives the networks that taught it.
    auto.engine_memory.learn(Engine::V29);
    assert_eq!(auto.engine(Engine::Unknown, &[]), Engine::V29);
    auto.engine_memory.learn(Engine::Unknown);
    assert_eq!(auto.engine(Engine::Unknown, &[]), Engine::V29);
    // A configured engine wins over everything.
    let fixed = Policy {
        engine: "28".parse().unwrap(),
        ..Policy::default()
    };
    assert_eq!(fixed.engine(Engine::V29, &stored), Engine::V28);
    assert!("30".parse::<EngineSetting>().is_err());
    assert_eq!(
        "auto".parse::<EngineSetting>().unwrap(),
        EngineSetting::Auto
    );
}

#[test]
fn what_dockerd_says_of_itself_wins_over_what_requests_suggest() {
    let auto = Policy::default();
    let stored = [(1, Engine::V29)];
    assert!(auto.engine_memory.tell(Engine::V28));
    assert!(!auto.engine_memory.tell(Engine::V28), "no change");
    assert_eq!(auto.engine(Engine::Unknown, &stored), Engine::V28);
    assert!(auto.engine_memory.tell(Engine::V29));
    assert_eq!(auto.engine(Engine::Unknown, &[]), Engine::V29);
    // A request from 20.10 itself: the API answered for another dockerd.
    assert_eq!(auto.engine(Engine::V20, &[]), Engine::V20);
    auto.engine_memory.tell(Engine::V20);
    assert_eq!(auto.engine(Engine::V20, &[]), Engine::V20);
    assert_eq!(auto.engine(Engine::Unknown, &[]), Engine::V28);
    // A configured engine still wins.
    let fixed = Policy {
        engine: "28".parse().unwrap(),
        ..Policy::default()
    };
    fixed.engine_memory.tell(Engine::V29);
    assert_eq!(fixed.engine(Engine::Unknown, &[]), Engine::V28);
}

#[test]
fn docker_versions_name_engines() {
    for (v, want) in [
        ("29.7.2", Some(Engine::V29)),
        ("30.0.0-rc.1", Some(Engine::V29)),
        ("28.5.2", Some(Engine::V28)),
        ("20.10.24+dfsg1", Some(Engine::V20)),
        ("26.1.5+dfsg1", None),
        ("19.03.1", None),
        ("", None),
        ("dev", None),
    ] {
        assert_eq!(Engine::from_version(v), want, "{v:?}");
    }
}

#[test]
fn parentless_networks_answer_as_internal_on_28_and_29_only() {
    let policy = Policy::default();
    let req = |parent: Option<&str>, internal: bool| {
        let mut opts = vec![("backend", "macvlan")];
        if let Some(p) = parent {
            opts.push(("parent", p));
        }
        let mut r = engine_req(true, None);
        r.options = serde_json::from_value(json!({
            "com.docker.network.generic": opts.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "com.docker.network.internal": internal,
        }))
        .unwrap();
        parse_network(&r, &policy).unwrap()
    };
    for (engine, parentless_internal) in [
        (Engine::V20, false),
        (Engine::Unknown, false),
        (Engine::V28, true),
        (Engine::V29, true),
    ] {
        let mut spec = req(None, false);
        spec.engine = engine;
        assert_eq!(spec.answers_internal(), parentless_internal, "{engine:?}");
        let mut spec = req(Some("eth0"), false);
        spec.engine = engine;
        assert!(!spec.answers_internal(), "{engine:?} with a parent");
        let mut spec = req(Some("eth0"), true);
        spec.engine = engine;
        assert!(spec.answers_internal(), "{engine:?} --internal");
    }
}
