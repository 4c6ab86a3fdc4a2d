//! The packaging files: the systemd unit passes `systemd-analyze verify`
//! with warden's real binary in it, and the container image's layout and
//! built-in config are what the Dockerfile says and what warden accepts.
//! (No container engine runs on the test machines, so the image itself is
//! not built here.)

mod common;

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_systemd_unit_verifies_with_the_real_binary() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    let found = analyze.exists().then_some(analyze);
    let Some(analyze) = common::deps::require(found, "systemd-analyze", "Debian's systemd package") else { return };
    let unit = std::fs::read_to_string(repo().join("dist/systemd/warden.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/warden --config /etc/warden/warden.conf\n"));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID\n"), "reload is SIGHUP");
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "CapabilityBoundingSet=\n"] {
        assert!(unit.contains(hardening), "{hardening}");
    }
    // The unit names the installed path; verify it with the binary at hand.
    let dir = common::temp_dir("systemd-unit");
    let unit = unit.replace("/usr/local/bin/warden", env!("CARGO_BIN_EXE_warden"));
    std::fs::write(dir.join("warden.service"), unit).unwrap();
    let out = Command::new(analyze).args(["verify", "--man=no"]).arg(dir.join("warden.service")).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

#[test]
fn the_container_image_has_the_official_layout_and_a_config_warden_accepts() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    for line in [
        "ENTRYPOINT [\"warden\"]",
        "CMD [\"--config\", \"/etc/nats/nats-server.conf\"]",
        "EXPOSE 4222 6222 8222",
        "USER warden",
    ] {
        assert!(dockerfile.lines().any(|l| l.trim() == line), "{line}");
    }
    // The config the image starts with, as its RUN line writes it.
    let printf = dockerfile.lines().find(|l| l.contains("> /etc/nats/nats-server.conf")).unwrap();
    let config = printf.split('\'').nth(1).unwrap().replace("\\n", "\n");
    let dir = common::temp_dir("image-config");
    std::fs::write(dir.join("nats-server.conf"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["check", "--config"])
        .arg(dir.join("nats-server.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("client listener: 0.0.0.0:4222"));
}
