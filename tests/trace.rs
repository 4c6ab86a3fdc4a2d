//! nats-server's protocol trace (`trace: true`, `-V`, `-DV`) from the real
//! binary: each op a client sends and each line it is sent, in
//! nats-server's `<<-`/`->>` shape, with credentials redacted and the
//! payload cut at `max_traced_msg_len`; the system account's connections
//! only with `trace_verbose`.

mod common;

use common::binary::{log_line, serve_file_logged, serve_logged, signal};
use common::Raw;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_in_and_out_is_traced_and_no_secret_is() {
    let config = "trace: true\nmax_traced_msg_len: 8\n\
                  accounts { SYS { users: [ {user: admin, password: \"sys-secret\"} ] } }\nsystem_account: SYS\n\
                  authorization { users: [ {user: alice, password: \"s3cret-pw\"} ] }\n";
    let (_server, addr, log) = serve_logged("trace", config).await;
    let (mut raw, _) = Raw::connect(addr).await;
    raw.send(
        "CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"s3cret-pw\",\"headers\":true,\"protocol\":1}\r\n",
    )
    .await;
    raw.send("SUB news.* q 1\r\nPUB news.today 12\r\nhello, world\r\nPING\r\n").await;
    raw.expect("MSG news.today 1 12").await;
    raw.payload(12).await;
    raw.expect("PONG").await;

    let connect = log_line(&log, &["<<- [CONNECT "]).await;
    assert!(connect.contains("cid:") && connect.contains("\"pass\":\"[REDACTED]\""), "{connect}");
    log_line(&log, &["<<- [SUB news.* q 1]"]).await;
    log_line(&log, &["<<- [PUB news.today 12]"]).await;
    log_line(&log, &["<<- MSG_PAYLOAD: [\"hello, w\"...]"]).await;
    log_line(&log, &["->> [MSG news.today 1 12]"]).await;
    log_line(&log, &["<<- [PING]"]).await;
    log_line(&log, &["->> [PONG]"]).await;

    // The system account's connections are traced only with trace_verbose.
    let (mut admin, _) = Raw::connect(addr).await;
    admin.send("CONNECT {\"verbose\":false,\"user\":\"admin\",\"pass\":\"sys-secret\"}\r\nPUB sys.quiet 2\r\nhi\r\nPING\r\n").await;
    admin.expect("PONG").await;
    raw.send("PUB after.admin 0\r\n\r\nPING\r\n").await;
    raw.expect("PONG").await;
    log_line(&log, &["<<- [PUB after.admin 0]"]).await;
    let lines = log.lock().unwrap().clone();
    assert!(!lines.iter().any(|l| l.contains("sys.quiet")), "the system account is not traced");
    for secret in ["s3cret-pw", "sys-secret"] {
        assert!(!lines.iter().any(|l| l.contains(secret)), "{secret} leaked into the log");
    }
}

/// A reload turns the trace on and off for connections already open (and
/// the log level with it), as nats-server's does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_the_trace_on_and_off_for_live_connections() {
    let dir = common::temp_dir("trace-reload");
    let conf = dir.join("warden.conf");
    let write = |trace: bool| std::fs::write(&conf, format!("listen: 127.0.0.1:0\ntrace: {trace}\n")).unwrap();
    write(false);
    let (server, addr, log) = serve_file_logged(&conf).await;
    let (mut raw, _) = Raw::connect(addr).await;
    raw.send("CONNECT {\"verbose\":false}\r\nPUB before.reload 0\r\n\r\nPING\r\n").await;
    raw.expect("PONG").await;

    write(true);
    signal(&server.0, "-HUP");
    log_line(&log, &["Reloaded: trace = true"]).await;
    raw.send("PUB while.on 0\r\n\r\nPING\r\n").await;
    raw.expect("PONG").await;
    log_line(&log, &["<<- [PUB while.on 0]"]).await;
    log_line(&log, &["->> [PONG]"]).await;

    write(false);
    signal(&server.0, "-HUP");
    log_line(&log, &["Reloaded: trace = false"]).await;
    raw.send("PUB while.off 0\r\n\r\nPING\r\n").await;
    raw.expect("PONG").await;
    // One more reload, logged after anything the PUB above could have.
    signal(&server.0, "-HUP");
    let reloads = || log.lock().unwrap().iter().filter(|l| l.contains("configuration reloaded")).count();
    common::peers::eventually("the third reload", || reloads() == 3).await;
    let lines = log.lock().unwrap().clone();
    for quiet in ["before.reload", "while.off"] {
        assert!(!lines.iter().any(|l| l.contains(quiet)), "{quiet} was traced");
    }
}
