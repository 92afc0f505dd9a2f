use super::*;
use std::io::Write;
use std::sync::Mutex;
use switchyard_core::spec::MacvlanMode;

/// Env overrides are process-wide: tests that set them run one at a time.
static ENV: Mutex<()> = Mutex::new(());

fn file(text: &str) -> tempfile_path::TempFile {
    tempfile_path::TempFile::new(text)
}

mod tempfile_path {
    use super::*;
    pub struct TempFile(pub PathBuf);
    impl TempFile {
        pub fn new(text: &str) -> TempFile {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "switchyard-config-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::File::create(&p)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            TempFile(p)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[test]
fn defaults_without_a_file() {
    let _g = ENV.lock().unwrap_or_else(|p| p.into_inner());
    let s = Settings::load(None).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(
        s.plugin.socket,
        PathBuf::from("/run/docker/plugins/switchyard.sock")
    );
    assert_eq!(s.plugin.state_dir, PathBuf::from("/var/lib/switchyard"));
    assert_eq!(s.driver_name(), "switchyard");
}

#[test]
fn the_documented_default_file_is_valid_and_equals_the_defaults() {
    let _g = ENV.lock().unwrap_or_else(|p| p.into_inner());
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/switchyard.toml");
    assert_eq!(Settings::load(Some(&p)).unwrap(), Settings::default());
}

#[test]
fn file_and_env_overrides() {
    let _g = ENV.lock().unwrap_or_else(|p| p.into_inner());
    let f = file(
        "[plugin]\nsocket = \"/run/docker/plugins/sy2.sock\"\n[macvlan]\nparent = \"tp0\"\nmode = \"vepa\"\n[parents]\nallow = [\"tp0\", \"bond*\"]\n",
    );
    // SAFETY: serialised by ENV; no other thread reads the environment meanwhile.
    unsafe {
        std::env::set_var("SWITCHYARD__PLUGIN__STATE_DIR", "/tmp/sy2-state");
        std::env::set_var("SWITCHYARD__LOG__LEVEL", "debug");
    }
    let s = Settings::load(Some(&f.0));
    unsafe {
        std::env::remove_var("SWITCHYARD__PLUGIN__STATE_DIR");
        std::env::remove_var("SWITCHYARD__LOG__LEVEL");
    }
    let s = s.unwrap();
    assert_eq!(s.driver_name(), "sy2");
    assert_eq!(s.plugin.state_dir, PathBuf::from("/tmp/sy2-state"));
    assert_eq!(s.log.level, "debug");
    let p = s.policy();
    assert_eq!(p.macvlan_parent.as_deref(), Some("tp0"));
    assert_eq!(p.macvlan_mode, MacvlanMode::Vepa);
    assert!(p.parent_allowed("bond0") && !p.parent_allowed("eth0"));
}

#[test]
fn env_list_override() {
    let _g = ENV.lock().unwrap_or_else(|p| p.into_inner());
    unsafe { std::env::set_var("SWITCHYARD__PARENTS__ALLOW", "tp0,tp1") };
    let s = Settings::load(None);
    unsafe { std::env::remove_var("SWITCHYARD__PARENTS__ALLOW") };
    assert_eq!(s.unwrap().backends.parents.allow, vec!["tp0", "tp1"]);
}

#[test]
fn errors_name_the_key_and_the_fix() {
    let _g = ENV.lock().unwrap_or_else(|p| p.into_inner());
    let cases: &[(&str, &[&str])] = &[
        (
            "[plugin]\nsockett = \"/x.sock\"\n",
            &["unknown field `sockett`", "socket"],
        ),
        ("[plugn]\n", &["unknown field `plugn`"]),
        ("[plugin]\nsocket = \"/run/x\"\n", &["must end in .sock"]),
        (
            "[plugin]\nsocket = \"x.sock\"\n",
            &["must be an absolute path"],
        ),
        (
            "[plugin]\nstate_dir = \"rel\"\n",
            &["state_dir rel must be an absolute path"],
        ),
        (
            "[plugin]\ndefault_backend = \"vxlam\"\n",
            &["backend \"vxlam\" is not known"],
        ),
        (
            "[log]\nlevel = \"loud\"\n",
            &[
                "[log] level \"loud\" is not known",
                "error, warn, info, debug, trace",
            ],
        ),
        ("[log]\nformat = \"xml\"\n", &["use text or json"]),
        (
            "[macvlan]\nmode = \"x\"\n",
            &["[macvlan] mode", "bridge, vepa, private, passthru"],
        ),
        (
            "[macvlan]\nparent = \"a/b\"\n",
            &["not a valid interface name"],
        ),
        (
            "[macvlan]\nparent = \"eth1\"\n[parents]\nallow = [\"eth0\"]\n",
            &["not in [parents] allow"],
        ),
        (
            "[cluster]\netcd_endpoints = [\"127.0.0.1:2379\"]\n",
            &["is not an etcd URL", "http://HOST:PORT"],
        ),
        (
            "[cluster]\nprefix = \"sy\"\n",
            &["must start and end with '/'"],
        ),
        (
            "[cluster]\ngc_grace = 1\n",
            &["gc_grace (1 s) must be at least lease_ttl"],
        ),
        (
            "[vxlan]\nlocal_ip = \"x\"\n",
            &["[vxlan] local_ip \"x\" is not an IP address"],
        ),
        ("[vxlan]\nvni_min = 0\n", &["vni_min..vni_max"]),
        ("[plugin\n", &["TOML parse error"]),
        ("[parents]\nallow = 5\n", &["invalid type"]),
    ];
    for (text, wants) in cases {
        let f = file(text);
        let e = Settings::load(Some(&f.0)).unwrap_err();
        assert!(
            e.contains(&f.0.display().to_string()),
            "error should name the file: {e}"
        );
        for w in *wants {
            assert!(e.contains(w), "for {text:?}: {e:?} should contain {w:?}");
        }
    }
    let e = Settings::load(Some(Path::new("/nonexistent/sy.toml"))).unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn the_example_files_are_valid() {
    let _g = ENV.lock().unwrap_or_else(|p| p.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/examples");
    let mut n = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        Settings::load(Some(&p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
    }
    assert!(n >= 2, "examples missing in {}", dir.display());
}
