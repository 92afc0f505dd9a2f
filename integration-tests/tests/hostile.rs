//! Hostile input, as an attacker or an unlucky client sends it: malformed
//! JSON, wrong types, bad IDs, bad addresses, option injection, wrong call
//! order, odd HTTP. Every case asserts the answer and its text, that no link
//! appeared or vanished, that the plugin did not panic and still serves.
//! Then the transport: slowloris and many idle connections, a second
//! instance on the same socket or state dir, SIGTERM with a half-sent
//! request, log forging.

use serde_json::{Value, json};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use switchyard_integration_tests::{Lab, Netns, Plugin, TempDir, random_id, wait_for};

/// What a case must get back.
struct Case {
    name: String,
    method: String,
    body: Vec<u8>,
    status: u16,
    /// Substrings the answer's error text must contain (none for 200).
    says: Vec<String>,
}

fn case(name: &str, method: &str, body: Vec<u8>, status: u16, says: &[&str]) -> Case {
    Case {
        name: name.into(),
        method: method.into(),
        body,
        status,
        says: says.iter().map(|s| s.to_string()).collect(),
    }
}

fn json_case(name: &str, method: &str, body: Value, status: u16, says: &[&str]) -> Case {
    case(
        name,
        method,
        serde_json::to_vec(&body).unwrap(),
        status,
        says,
    )
}

/// IDs no dockerd sends, each with a name for the case.
fn bad_ids() -> Vec<(&'static str, String)> {
    vec![
        ("multibyte", "aéééééééééééé".into()),
        ("colon", format!("{}:", "0".repeat(63))),
        ("nul", format!("{}\0", "0".repeat(63))),
        ("newline", format!("{}\nINFO forged", "0".repeat(52))),
        ("escape", format!("\u{1b}[2J{}", "0".repeat(60))),
        ("huge", "0".repeat(100_000)),
        ("short", "0".repeat(63)),
        ("long", "0".repeat(65)),
        ("empty", String::new()),
        ("not-hex", "g".repeat(64)),
        ("path", format!("../../../etc/passwd{}", "0".repeat(45))),
        ("upper-swarm", "ABCDEFGHIJKLMNOPQRSTUVWXY".into()),
    ]
}

const ENDPOINT_METHODS: [&str; 7] = [
    "CreateEndpoint",
    "DeleteEndpoint",
    "Join",
    "Leave",
    "EndpointOperInfo",
    "ProgramExternalConnectivity",
    "RevokeExternalConnectivity",
];

fn id_cases(net: &str) -> Vec<Case> {
    let mut out = Vec::new();
    for (tag, bad) in bad_ids() {
        for m in ["CreateNetwork", "DeleteNetwork"]
            .iter()
            .chain(ENDPOINT_METHODS.iter())
        {
            let mut body = json!({"NetworkID": bad, "EndpointID": random_id(), "Options": {}});
            if *m == "Join" {
                body["SandboxKey"] = json!("/var/run/docker/netns/x");
            }
            out.push(json_case(
                &format!("{m} NetworkID {tag}"),
                &format!("NetworkDriver.{m}"),
                body,
                400,
                &["NetworkID", "64 hexadecimal digits"],
            ));
        }
        for m in ENDPOINT_METHODS {
            out.push(json_case(
                &format!("{m} EndpointID {tag}"),
                &format!("NetworkDriver.{m}"),
                json!({"NetworkID": net, "EndpointID": bad, "Options": {}}),
                400,
                &["EndpointID", "64 hexadecimal digits"],
            ));
        }
    }
    out
}

fn syntax_cases() -> Vec<Case> {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("open brace", b"{".to_vec()),
        ("open bracket", b"[".to_vec()),
        ("nul word", b"nul".to_vec()),
        ("missing value", b"{\"a\":}".to_vec()),
        ("invalid utf-8", b"{\"NetworkID\":\"\xff\xfe\"}".to_vec()),
        ("byte order mark", b"\xef\xbb\xbf{}".to_vec()),
        ("deep nesting", deep.into_bytes()),
        ("trailing garbage", b"{}x".to_vec()),
        ("huge exponent", b"1e999999".to_vec()),
        ("single quotes", b"{'NetworkID':'x'}".to_vec()),
        ("control in string", b"{\"NetworkID\":\"a\x01b\"}".to_vec()),
        ("nul byte", b"{\0}".to_vec()),
    ];
    bodies
        .into_iter()
        .map(|(n, b)| {
            case(
                n,
                "NetworkDriver.CreateNetwork",
                b,
                400,
                &["not valid JSON"],
            )
        })
        .collect()
}

fn type_cases(net: &str, ep: &str) -> Vec<Case> {
    let id = random_id();
    let protocol = "does not match the protocol";
    let mut out = vec![
        json_case(
            "top-level string",
            "NetworkDriver.CreateNetwork",
            json!("x"),
            400,
            &[protocol],
        ),
        json_case(
            "top-level list",
            "NetworkDriver.CreateNetwork",
            json!([]),
            400,
            &[protocol],
        ),
        json_case(
            "top-level number",
            "NetworkDriver.Join",
            json!(5),
            400,
            &[protocol],
        ),
        json_case(
            "top-level bool",
            "NetworkDriver.Leave",
            json!(true),
            400,
            &[protocol],
        ),
        json_case(
            "NetworkID number",
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": 123}),
            400,
            &["NetworkID", "must be a string"],
        ),
        json_case(
            "NetworkID list",
            "NetworkDriver.DeleteNetwork",
            json!({"NetworkID": []}),
            400,
            &["NetworkID", "must be a string"],
        ),
        json_case(
            "EndpointID object",
            "NetworkDriver.Join",
            json!({"NetworkID": net, "EndpointID": {}}),
            400,
            &["EndpointID", "must be a string"],
        ),
        json_case(
            "Options string",
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": id, "Options": "x"}),
            400,
            &["Options", protocol],
        ),
        json_case(
            "IPv4Data string",
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": id, "IPv4Data": "x"}),
            400,
            &["IPv4Data", protocol],
        ),
        json_case(
            "IPv4Data item number",
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": id, "IPv4Data": [5]}),
            400,
            &["IPv4Data[0]", "an object"],
        ),
        json_case(
            "Pool number",
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": id, "IPv4Data": [{"Pool": 123}]}),
            400,
            &["IPv4Data[0].Pool"],
        ),
        json_case(
            "IPv6Data object",
            "NetworkDriver.CreateNetwork",
            json!({"NetworkID": id, "IPv6Data": {}}),
            400,
            &["IPv6Data"],
        ),
        json_case(
            "Interface number",
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": net, "EndpointID": random_id(), "Interface": 5}),
            400,
            &["Interface"],
        ),
        json_case(
            "Interface.Address number",
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": net, "EndpointID": random_id(), "Interface": {"Address": 5}}),
            400,
            &["Interface.Address"],
        ),
        json_case(
            "Interface.MacAddress list",
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": net, "EndpointID": random_id(), "Interface": {"MacAddress": []}}),
            400,
            &["Interface.MacAddress"],
        ),
        json_case(
            "SandboxKey number",
            "NetworkDriver.Join",
            json!({"NetworkID": net, "EndpointID": ep, "SandboxKey": 7}),
            400,
            &["SandboxKey"],
        ),
        json_case(
            "Join Options list",
            "NetworkDriver.Join",
            json!({"NetworkID": net, "EndpointID": ep, "Options": []}),
            400,
            &["Options"],
        ),
        json_case(
            "GwAllocCheck Options number",
            "NetworkDriver.GwAllocCheck",
            json!({"Options": 5}),
            400,
            &["Options"],
        ),
        json_case(
            "RequestPool Pool number",
            "IpamDriver.RequestPool",
            json!({"Pool": 5}),
            400,
            &["Pool", protocol],
        ),
        json_case(
            "RequestPool Options list",
            "IpamDriver.RequestPool",
            json!({"Options": []}),
            400,
            &["Options"],
        ),
        json_case(
            "RequestAddress PoolID number",
            "IpamDriver.RequestAddress",
            json!({"PoolID": 5}),
            400,
            &["PoolID"],
        ),
        json_case(
            "RequestAddress Address object",
            "IpamDriver.RequestAddress",
            json!({"PoolID": "x", "Address": {}}),
            400,
            &["Address"],
        ),
        json_case(
            "ReleasePool PoolID bool",
            "IpamDriver.ReleasePool",
            json!({"PoolID": true}),
            400,
            &["PoolID"],
        ),
        json_case(
            "missing NetworkID",
            "NetworkDriver.CreateNetwork",
            json!({}),
            400,
            &["NetworkID is missing"],
        ),
        json_case(
            "missing EndpointID",
            "NetworkDriver.Join",
            json!({"NetworkID": net}),
            400,
            &["EndpointID is missing"],
        ),
        case(
            "empty Join body",
            "NetworkDriver.Join",
            Vec::new(),
            400,
            &["NetworkID is missing"],
        ),
    ];
    // The generic options must be an object of strings.
    out.push(json_case(
        "generic options number",
        "NetworkDriver.CreateNetwork",
        json!({"NetworkID": random_id(), "Options": {"com.docker.network.generic": 5}}),
        500,
        &["com.docker.network.generic"],
    ));
    out
}

fn create_network(generic: Value, v4: Value, v6: Value) -> Value {
    json!({
        "NetworkID": random_id(),
        "Options": {"com.docker.network.enable_ipv6": v6 != json!([]), "com.docker.network.generic": generic},
        "IPv4Data": v4,
        "IPv6Data": v6,
    })
}

fn value_cases(net: &str) -> Vec<Case> {
    let mv = json!({"backend": "macvlan", "parent": "tp0"});
    let pool =
        |p: &str, g: &str| json!([{"AddressSpace": "LocalDefault", "Pool": p, "Gateway": g}]);
    let mut out = Vec::new();
    for (n, v4, v6, says) in [
        (
            "prefix 33",
            pool("10.0.0.0/33", "10.0.0.1/24"),
            json!([]),
            "not a CIDR subnet",
        ),
        (
            "octet 300",
            pool("300.1.1.0/24", "300.1.1.1/24"),
            json!([]),
            "not a CIDR subnet",
        ),
        (
            "v6 prefix 129",
            json!([]),
            pool("fd00::/129", "fd00::1/64"),
            "not a CIDR subnet",
        ),
        (
            "gateway outside",
            pool("10.0.0.0/24", "10.0.1.1/24"),
            json!([]),
            "outside subnet",
        ),
        (
            "gateway word",
            pool("10.0.0.0/24", "gw"),
            json!([]),
            "is not an IP address",
        ),
        (
            "v4 pool as v6",
            json!([]),
            pool("10.9.0.0/24", "10.9.0.1/24"),
            "is not IPv6",
        ),
        (
            "v6 pool as v4",
            pool("fd00:9::/64", "fd00:9::1/64"),
            json!([]),
            "is not IPv4",
        ),
        (
            "pool with space",
            pool("10.0.0.0 /24", ""),
            json!([]),
            "not a CIDR subnet",
        ),
    ] {
        out.push(json_case(
            &format!("subnet {n}"),
            "NetworkDriver.CreateNetwork",
            create_network(mv.clone(), v4, v6),
            500,
            &[says],
        ));
    }
    let v4 = pool("10.66.0.0/24", "10.66.0.1/24");
    for (n, generic, says) in [
        (
            "parent dot-dot",
            json!({"backend": "macvlan", "parent": "../etc"}),
            "not a valid interface name",
        ),
        (
            "parent semicolon",
            json!({"backend": "macvlan", "parent": "eth0;reboot"}),
            "does not exist on this host",
        ),
        (
            "parent space",
            json!({"backend": "macvlan", "parent": "eth 0"}),
            "not a valid interface name",
        ),
        (
            "parent newline",
            json!({"backend": "macvlan", "parent": "tp0\nx"}),
            "without control characters",
        ),
        (
            "parent too long",
            json!({"backend": "macvlan", "parent": "a".repeat(300)}),
            "at most 15 bytes",
        ),
        (
            "parent lo",
            json!({"backend": "macvlan", "parent": "lo"}),
            "cannot carry",
        ),
        (
            "backend injected",
            json!({"backend": "macvlan;rm -rf /", "parent": "tp0"}),
            "is not known",
        ),
        (
            "mtu injected",
            json!({"backend": "macvlan", "parent": "tp0", "com.docker.network.driver.mtu": "1500;"}),
            "is not a number",
        ),
        (
            "mtu negative",
            json!({"backend": "macvlan", "parent": "tp0", "com.docker.network.driver.mtu": "-1"}),
            "is not a number",
        ),
        (
            "mtu huge",
            json!({"backend": "macvlan", "parent": "tp0", "com.docker.network.driver.mtu": "99999999999"}),
            "is not a number",
        ),
        (
            "mode newline",
            json!({"backend": "macvlan", "parent": "tp0", "macvlan_mode": "bridge\n"}),
            "without control characters",
        ),
        (
            "unknown option",
            json!({"backend": "macvlan", "parent": "tp0", "foo": "bar"}),
            "is not known",
        ),
        (
            "option of another backend",
            json!({"backend": "macvlan", "parent": "tp0", "vni": "5"}),
            "belongs to backend vxlan",
        ),
        (
            "vni words",
            json!({"backend": "vxlan", "vni": "1 2"}),
            "is not a number",
        ),
        (
            "vni zero",
            json!({"backend": "vxlan", "vni": "0"}),
            "out of range",
        ),
        (
            "peers garbage",
            json!({"backend": "vxlan", "vni": "77", "peers": "a,b"}),
            "is not an IP address",
        ),
        (
            "vlan 4095",
            json!({"backend": "macvlan", "parent": "tp0.4095"}),
            "outside 1–4094",
        ),
        (
            "escape in value",
            json!({"backend": "macvlan", "parent": "tp0", "macvlan_mode": "\u{1b}[2J"}),
            "without control characters",
        ),
    ] {
        out.push(json_case(
            &format!("option {n}"),
            "NetworkDriver.CreateNetwork",
            create_network(generic, v4.clone(), json!([])),
            500,
            &[says],
        ));
    }
    for (n, iface, says) in [
        ("address word", json!({"Address": "abc"}), "Address"),
        (
            "address v6 in v4",
            json!({"Address": "fd00::5/64"}),
            "Address",
        ),
        (
            "mac garbage",
            json!({"MacAddress": "zz:zz:zz:zz:zz:zz"}),
            "MAC",
        ),
        ("mac short", json!({"MacAddress": "02:42"}), "MAC"),
    ] {
        out.push(json_case(
            &format!("endpoint {n}"),
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": net, "EndpointID": random_id(), "Interface": iface}),
            500,
            &[says],
        ));
    }
    out
}

fn order_cases(net: &str) -> Vec<Case> {
    let (n, e) = (random_id(), random_id());
    vec![
        json_case(
            "Join before CreateEndpoint",
            "NetworkDriver.Join",
            json!({"NetworkID": net, "EndpointID": e, "SandboxKey": "/x"}),
            500,
            &["CreateEndpoint before Join"],
        ),
        json_case(
            "CreateEndpoint on unknown network",
            "NetworkDriver.CreateEndpoint",
            json!({"NetworkID": n, "EndpointID": e}),
            500,
            &["not known"],
        ),
        json_case(
            "Join on unknown network",
            "NetworkDriver.Join",
            json!({"NetworkID": n, "EndpointID": e}),
            500,
            &["not known"],
        ),
        json_case(
            "DeleteEndpoint unknown",
            "NetworkDriver.DeleteEndpoint",
            json!({"NetworkID": n, "EndpointID": e}),
            200,
            &[],
        ),
        json_case(
            "Leave unknown",
            "NetworkDriver.Leave",
            json!({"NetworkID": n, "EndpointID": e}),
            200,
            &[],
        ),
        json_case(
            "DeleteNetwork unknown",
            "NetworkDriver.DeleteNetwork",
            json!({"NetworkID": n}),
            200,
            &[],
        ),
        json_case(
            "OperInfo unknown",
            "NetworkDriver.EndpointOperInfo",
            json!({"NetworkID": n, "EndpointID": e}),
            200,
            &[],
        ),
        json_case(
            "RequestAddress bad pool",
            "IpamDriver.RequestAddress",
            json!({"PoolID": "nope"}),
            500,
            &["PoolID"],
        ),
        json_case(
            "ReleasePool unknown",
            "IpamDriver.ReleasePool",
            json!({"PoolID": "nope"}),
            200,
            &[],
        ),
        json_case(
            "ReleaseAddress unknown",
            "IpamDriver.ReleaseAddress",
            json!({"PoolID": "nope", "Address": "1.2.3.4"}),
            200,
            &[],
        ),
        json_case(
            "RequestPool cluster without etcd",
            "IpamDriver.RequestPool",
            json!({"Pool": "10.1.0.0/16", "Options": {"scope": "cluster"}}),
            500,
            &["[cluster] etcd_endpoints"],
        ),
        json_case(
            "RequestPool bad pool",
            "IpamDriver.RequestPool",
            json!({"Pool": "10.1.0.0/99"}),
            500,
            &["10.1.0.0/99"],
        ),
        json_case(
            "unknown method",
            "NetworkDriver.NoSuchMethod",
            json!({}),
            404,
            &["not implemented"],
        ),
        json_case(
            "unknown subsystem",
            "Nope.Nope",
            json!({}),
            404,
            &["not implemented"],
        ),
        json_case(
            "method with escape",
            "NetworkDriver.%1B%5B2J%0Aforged",
            json!({}),
            404,
            &["not implemented"],
        ),
    ]
}

/// Links and their aliases in the lab's namespace.
fn link_state(host: &Netns) -> Vec<(String, Option<String>)> {
    let mut v: Vec<_> = host
        .links()
        .into_iter()
        .map(|l| {
            let a = host.link_alias(&l);
            (l, a)
        })
        .collect();
    v.sort();
    v
}

/// Raw HTTP on the plugin's socket: what the client helper cannot send.
fn raw(lab: &Lab, request: &[u8]) -> String {
    let mut s = UnixStream::connect(lab.plugin.socket_path()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn assert_serving(lab: &Lab, after: &str) {
    let r = lab
        .plugin
        .client()
        .call_raw("NetworkDriver.GetCapabilities", b"")
        .unwrap_or_else(|e| panic!("after {after}: the plugin no longer answers: {e}"));
    assert_eq!(r.status, 200, "after {after}");
}

#[test]
fn hostile_requests_get_clear_answers_and_change_nothing() {
    let mut lab = Lab::new();
    let net = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0")],
            "10.77.0.0/24",
            false,
        )
        .unwrap();
    let ep = random_id();
    lab.ln
        .create_endpoint(&net, &ep, "10.77.0.2/24", "", "")
        .unwrap();
    let mut cases = Vec::new();
    cases.extend(syntax_cases());
    cases.extend(type_cases(&net, &ep));
    cases.extend(id_cases(&net));
    cases.extend(value_cases(&net));
    cases.extend(order_cases(&net));
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let before = link_state(&lab.host);
    let mut client = lab.plugin.client();
    for c in &cases {
        let r = client
            .call_raw(&c.method, &c.body)
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", c.name));
        let text = r.json()["Err"].as_str().unwrap_or("").to_string();
        assert_eq!(r.status, c.status, "{}: {}", c.name, r.text());
        for s in &c.says {
            assert!(
                text.contains(s.as_str()),
                "{}: {text:?} should say {s:?}",
                c.name
            );
        }
        if c.status != 200 {
            assert!(
                !text.is_empty(),
                "{}: an error without text: {}",
                c.name,
                r.text()
            );
        }
        for leak in [
            "struct ",
            "Rejection",
            "hyper::",
            "redb",
            "/var/lib",
            "panicked",
            "Some(",
            "Error {",
        ] {
            assert!(
                !text.contains(leak),
                "{}: internal detail {leak:?} in {text:?}",
                c.name
            );
        }
        assert!(
            text.chars().all(|ch| !ch.is_control()),
            "{}: control characters in {text:?}",
            c.name
        );
        assert!(
            text.len() < 1000,
            "{}: {} bytes of error",
            c.name,
            text.len()
        );
        assert_eq!(link_state(&lab.host), before, "{}: links changed", c.name);
    }
    assert_serving(&lab, "the table");
    // The transport's edges.
    let mut c = lab.plugin.client();
    let big = vec![b' '; 3 << 20];
    assert_eq!(c.call_raw("NetworkDriver.Join", &big).unwrap().status, 413);
    let get = raw(
        &lab,
        b"GET /NetworkDriver.GetCapabilities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(get.starts_with("HTTP/1.1 405"), "{get}");
    let put = raw(
        &lab,
        b"PUT /NetworkDriver.Join HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert!(put.starts_with("HTTP/1.1 405"), "{put}");
    let nested = raw(
        &lab,
        b"POST /a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    );
    assert!(nested.starts_with("HTTP/1.1 404"), "{nested}");
    let garbage = raw(&lab, b"\x00\x01\x02 nonsense\r\n\r\n");
    assert!(!garbage.contains("panicked"), "{garbage}");
    // A chunked body is bounded like any other: 10 MB is refused, not read whole.
    let mut s = UnixStream::connect(lab.plugin.socket_path()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /NetworkDriver.Join HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let head = format!("{:x}\r\n", chunk.len());
    for _ in 0..160 {
        if s.write_all(head.as_bytes()).is_err()
            || s.write_all(&chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 413"), "chunked 10 MB: {out}");
    assert_serving(&lab, "the transport cases");
    assert_eq!(link_state(&lab.host), before, "links changed");
    let log = lab.plugin.log_text();
    assert!(!log.contains("panicked"), "the plugin panicked:\n{log}");
    // No request content starts a log line of its own.
    assert!(
        !log.lines()
            .any(|l| l.starts_with("INFO forged") || l.contains("\u{1b}[2J")),
        "a request forged a log line:\n{log}"
    );
    lab.ln.endpoint_call("DeleteEndpoint", &net, &ep).unwrap();
    lab.ln.delete_network(&net).unwrap();
    lab.assert_no_marked_links();
}

#[test]
fn slow_and_idle_clients_do_not_stall_others() {
    let lab = Lab::new();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(UnixStream::connect(lab.plugin.socket_path()).unwrap());
    }
    // A slowloris: headers sent a byte at a time, never finished.
    let mut slow = UnixStream::connect(lab.plugin.socket_path()).unwrap();
    slow.write_all(
        b"POST /NetworkDriver.Join HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Netw",
    )
    .unwrap();
    let start = Instant::now();
    for _ in 0..20 {
        assert_serving(&lab, "idle connections");
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "20 calls took {:?} beside 200 idle connections",
        start.elapsed()
    );
    drop(idle);
    drop(slow);
}

#[test]
fn sigterm_stops_the_plugin_despite_a_half_sent_request() {
    let mut lab = Lab::new();
    let mut half = UnixStream::connect(lab.plugin.socket_path()).unwrap();
    half.write_all(
        b"POST /NetworkDriver.Join HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"Net",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    assert!(lab.plugin.stop(), "the plugin did not exit after SIGTERM");
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "SIGTERM took {:?}",
        start.elapsed()
    );
    drop(half);
}

#[test]
fn a_second_instance_on_the_same_socket_or_state_dir_touches_nothing() {
    let mut lab = Lab::new();
    let net = lab
        .network(
            &[("backend", "macvlan"), ("parent", "tp0")],
            "10.78.0.0/24",
            false,
        )
        .unwrap();
    let ctr = Netns::new("c");
    let (ep, join) = lab.attach(&net, &ctr, "10.78.0.2/24");
    let _ = (ep, join);
    // A live endpoint link in the host namespace that a second instance's
    // startup cleanup must not remove: a second endpoint, joined but not
    // yet handed to a container.
    let ep2 = random_id();
    lab.ln
        .create_endpoint(&net, &ep2, "10.78.0.3/24", "", "")
        .unwrap();
    let j2 = lab.ln.join(&net, &ep2, "/nonexistent").unwrap();
    let link2 = j2["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
    let before = link_state(&lab.host);
    let state = lab.plugin.state_dir.clone();
    let sock = lab.plugin.socket_path().to_path_buf();
    let (state_tmp, sock_tmp) = (TempDir::new("hostile"), TempDir::new("hostile"));
    let other_state = state_tmp.path().to_str().unwrap().to_string();
    let other_sock = format!("{}/other.sock", sock_tmp.path().display());
    for (what, socket, state_dir, says) in [
        (
            "same socket",
            sock.to_str().unwrap().to_string(),
            other_state.clone(),
            "already serves",
        ),
        (
            "same state dir",
            other_sock.clone(),
            state.to_str().unwrap().to_string(),
            "in use by another switchyard",
        ),
    ] {
        let out = Plugin::run_once(
            &lab.host,
            &["serve"],
            &[
                ("SWITCHYARD__PLUGIN__SOCKET", socket.as_str()),
                ("SWITCHYARD__PLUGIN__STATE_DIR", state_dir.as_str()),
            ],
            Duration::from_secs(20),
        );
        assert!(
            !out.success,
            "{what}: the second instance started:\n{}",
            out.text
        );
        assert!(out.text.contains(says), "{what}: {}", out.text);
        assert_eq!(link_state(&lab.host), before, "{what}: links changed");
        assert!(lab.host.links().contains(&link2));
        assert_serving(&lab, what);
    }
    // The first instance's socket is still there and answers.
    assert!(sock.exists());
}

#[test]
fn the_socket_is_never_open_to_others() {
    let lab = Lab::new();
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(lab.plugin.socket_path()).unwrap();
    assert_eq!(
        m.mode() & 0o777,
        0o660,
        "socket mode {:o}",
        m.mode() & 0o777
    );
    let _ = wait_for(1.0, || Some(()));
}

/// Two parentless networks whose IDs share their first 12 characters get
/// parents of their own: deleting the first leaves the second whole.
#[test]
fn networks_whose_ids_share_a_prefix_never_share_a_private_parent() {
    let mut lab = Lab::new();
    let prefix = random_id()[..12].to_string();
    let ids: Vec<String> = (0..2)
        .map(|_| format!("{prefix}{}", &random_id()[12..]))
        .collect();
    let mut links = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let subnet = format!("10.8{i}.0.0/24");
        lab.ln
            .create_network(
                id,
                &[("backend", "macvlan")],
                &[(subnet.as_str(), None)],
                &[],
                true,
            )
            .unwrap();
        let ep = random_id();
        lab.ln
            .create_endpoint(id, &ep, &format!("10.8{i}.0.2/24"), "", "")
            .unwrap();
        let join = lab.ln.join(id, &ep, "/nonexistent").unwrap();
        links.push(
            join["InterfaceName"]["SrcName"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let parents: Vec<String> = lab
        .host
        .links()
        .into_iter()
        .filter(|l| l.starts_with("sd"))
        .collect();
    assert_eq!(parents.len(), 2, "one private parent each: {parents:?}");
    // DeleteNetwork with an endpoint left (dockerd never does it): whatever
    // Switchyard answers, the other network must not suffer.
    let _ = lab.ln.delete_network(&ids[0]);
    assert!(
        lab.host.links().contains(&links[1]),
        "deleting the first network removed the second's endpoint link: {:?}",
        lab.host.links()
    );
    let left: Vec<String> = lab
        .host
        .links()
        .into_iter()
        .filter(|l| l.starts_with("sd"))
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
