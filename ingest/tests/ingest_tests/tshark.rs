//! Running tshark, the reference decoder of the packet tests.

use std::process::Command;

/// tshark's standard output for `args`; the test fails when tshark cannot run or fails.
pub fn output(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark (Debian package tshark, in the Makefile's APT_PACKAGES) must be installed");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
