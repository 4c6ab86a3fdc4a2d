//! The syslog sink end to end: warden's lines on a UDP receiver on
//! 127.0.0.1, framed as nats-server 2.15.1 frames its own (checked against
//! it, started the same way), TCP framing from the `remote_syslog` config
//! key, a Unix datagram socket, and a daemon that cannot be reached
//! refusing the start as in nats-server.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::binary::{exit_status, signal, Serving};
use common::peers::free_port;
use common::{temp_dir, within};
use tokio::io::AsyncBufReadExt;
use tokio::net::{TcpListener, UdpSocket};

/// One received syslog message, split at its header's fields.
#[derive(Debug)]
struct Message {
    priority: u8,
    time: String,
    host: String,
    tag: String,
    pid: u32,
    body: String,
}

/// Parses `<PRI>TIME HOST TAG[PID]: BODY\n`, Go's `log/syslog` network
/// form; panics on anything else.
fn parse(frame: &[u8]) -> Message {
    let text = std::str::from_utf8(frame).unwrap();
    let line = text.strip_suffix('\n').unwrap_or_else(|| panic!("one newline ends a message: {text:?}"));
    assert!(!line.contains('\n'), "{text:?}");
    let (priority, rest) = line.strip_prefix('<').and_then(|l| l.split_once('>')).expect("<PRI>");
    let mut fields = rest.splitn(3, ' ');
    let (time, host, rest) = (fields.next().unwrap(), fields.next().unwrap(), fields.next().unwrap());
    let (tag_pid, body) = rest.split_once(": ").expect("TAG[PID]: ");
    let (tag, pid) = tag_pid.strip_suffix(']').and_then(|t| t.split_once('[')).expect("TAG[PID]");
    Message {
        priority: priority.parse().unwrap(),
        time: time.into(),
        host: host.into(),
        tag: tag.into(),
        pid: pid.parse().unwrap(),
        body: body.into(),
    }
}

/// Receives datagrams until one whose body contains `until`; all of them.
async fn receive_until(socket: &UdpSocket, until: &str) -> Vec<Message> {
    within(async {
        let mut got = Vec::new();
        let mut buf = vec![0; 65_536];
        loop {
            let n = socket.recv(&mut buf).await.unwrap();
            let message = parse(&buf[..n]);
            let done = message.body.contains(until);
            got.push(message);
            if done {
                return got;
            }
        }
    })
    .await
}

/// warden under the name `nats-server` (a link, as the README's drop-in
/// section makes one), so its tag is nats-server's.
fn warden_as_nats_server(dir: &Path) -> PathBuf {
    let link = dir.join("nats-server");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warden"), &link).unwrap();
    link
}

/// Starts `binary -p PORT -r udp://127.0.0.1:RECEIVER`, the same command
/// line for warden and nats-server.
fn start(binary: &Path, port: u16, receiver: u16) -> Child {
    Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-r", &format!("udp://127.0.0.1:{receiver}")])
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned()
}

/// What every message of a server run must share: nats-server's tag, the
/// child's pid, this host, an RFC 3339 UTC time.
fn assert_header(messages: &[Message], pid: u32) {
    for m in messages {
        assert_eq!((m.tag.as_str(), m.pid, m.host.as_str()), ("nats-server", pid, hostname().as_str()), "{m:?}");
        assert!(m.time.len() == 20 && m.time.ends_with('Z') && m.time.as_bytes()[10] == b'T', "{m:?}");
        assert!([3, 4, 5, 7].contains(&m.priority), "nats-server's severities, facility 0: {m:?}");
    }
}

#[tokio::test]
async fn remote_syslog_lines_are_framed_as_nats_server_2_15_frames_them() {
    let dir = temp_dir("syslog-udp");
    let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = free_port();
    let child = start(&warden_as_nats_server(&dir), port, receiver.local_addr().unwrap().port());
    let mut warden = Serving(child);
    let listening = format!("Listening for client connections on 127.0.0.1:{port}");
    let started = receive_until(&receiver, &listening).await;
    assert_header(&started, warden.0.id());
    let line = started.last().unwrap();
    assert_eq!(line.priority, 5, "notice, as nats-server's Noticef: {line:?}");
    assert!(line.body.starts_with(&listening), "the message without a time or level of its own: {line:?}");

    // It serves while it logs there, and its last line reaches the daemon.
    let client = within(async_nats::connect(format!("nats://127.0.0.1:{port}"))).await.unwrap();
    within(client.flush()).await.unwrap();
    signal(&warden.0, "-INT");
    let stopping = receive_until(&receiver, "shutting down").await;
    assert_header(&stopping, warden.0.id());
    assert!(exit_status(&mut warden).await.success());

    let Some(nats) = common::deps::nats_server_2_15() else { return };
    let reference = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = free_port();
    let nats = common::peers::NatsServer(start(&nats, port, reference.local_addr().unwrap().port()), None);
    let listening = format!("Listening for client connections on 127.0.0.1:{port}");
    let theirs = receive_until(&reference, &listening).await;
    assert_header(&theirs, nats.0.id());
    let their_line = theirs.last().unwrap();
    assert_eq!((their_line.priority, their_line.body.as_str()), (line.priority, listening.as_str()));
}

#[tokio::test]
async fn remote_syslog_over_tcp_from_the_config_key_one_line_after_another() {
    let dir = temp_dir("syslog-tcp");
    let daemon = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = free_port();
    let conf = dir.join("warden.conf");
    let config = format!("listen: 127.0.0.1:{port}\nremote_syslog: \"tcp://{}\"\n", daemon.local_addr().unwrap());
    std::fs::write(&conf, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config"])
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let warden = Serving(child);
    let (stream, _) = within(daemon.accept()).await.unwrap();
    let mut lines = tokio::io::BufReader::new(stream).lines();
    let listening = format!("Listening for client connections on 127.0.0.1:{port}");
    within(async {
        loop {
            let line = lines.next_line().await.unwrap().expect("a line");
            let message = parse(format!("{line}\n").as_bytes());
            assert_eq!((message.tag.as_str(), message.pid), ("warden", warden.0.id()), "{message:?}");
            if message.body.contains(&listening) {
                return;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_syslog_daemon_that_cannot_be_reached_stops_the_start() {
    let dir = temp_dir("syslog-refused");
    // A port nothing listens on.
    let closed = free_port();
    let conf = dir.join("warden.conf");
    std::fs::write(&conf, format!("listen: 127.0.0.1:{}\nremote_syslog: \"tcp://127.0.0.1:{closed}\"\n", free_port()))
        .unwrap();
    let log = dir.join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config"])
        .arg(&conf)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = exit_status(&mut Serving(child)).await;
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains(&format!("cannot connect to syslog at tcp://127.0.0.1:{closed}")), "{stderr}");
}

#[tokio::test]
async fn remote_syslog_to_a_unix_datagram_socket() {
    let dir = temp_dir("syslog-unix");
    let socket = dir.join("log.sock");
    let daemon = tokio::net::UnixDatagram::bind(&socket).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "-a", "127.0.0.1", "-p", &port.to_string(), "-r"])
        .arg(format!("unix://{}", socket.display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let warden = Serving(child);
    let listening = format!("Listening for client connections on 127.0.0.1:{port}");
    within(async {
        let mut buf = vec![0; 65_536];
        loop {
            let n = daemon.recv(&mut buf).await.unwrap();
            let message = parse(&buf[..n]);
            assert_eq!((message.tag.as_str(), message.pid), ("warden", warden.0.id()), "{message:?}");
            if message.body.contains(&listening) {
                return;
            }
        }
    })
    .await;
}
