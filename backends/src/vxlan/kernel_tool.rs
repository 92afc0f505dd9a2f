//! The kernel's command-line tools Switchyard drives where netlink crates do
//! not reach: `nft` (the members-only allow-list, `firewall.rs`) and
//! iproute2's `ip xfrm` / `tc` (encrypted networks, `ipsec.rs`): changes,
//! and the counts that tell whether the kernel still holds them. Each change
//! is one script on stdin — one transaction for `nft -f -`, one batch for
//! `ip -batch -` — so secrets (IPsec keys) never appear in a command line.

use tokio::io::AsyncWriteExt;

/// Runs `prog args…` with `input` on stdin. `package` names what provides
/// `prog` and what for, in the error when it cannot be run.
pub async fn run(prog: &str, args: &[&str], input: &str, package: &str) -> Result<(), String> {
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {prog} ({e}); install {package}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(input.as_bytes())
            .await
            .map_err(|e| format!("{prog}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| format!("{prog}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{prog} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// How many lines of `prog args…`'s output start with `start`; None if it
/// cannot say.
pub async fn count_lines(prog: &str, args: &[&str], start: &str) -> Option<usize> {
    let out = tokio::process::Command::new(prog)
        .args(args)
        .output()
        .await
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(start))
            .count()
    })
}
