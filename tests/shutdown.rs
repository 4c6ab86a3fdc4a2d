//! Clean shutdown: stop accepting, flush what is queued, close.

mod common;

use common::*;
use tokio::net::TcpStream;

#[tokio::test]
async fn shutdown_flushes_pending_messages_then_closes() {
    let server = start(test_options()).await;
    let addr = server.local_addr();
    let mut sub = Raw::connected(addr).await;
    sub.send("SUB s 1\r\n").await;
    sub.ping_pong().await;
    let mut publisher = Raw::connected(addr).await;
    publisher.send("PUB s 4\r\nlast\r\n").await;
    publisher.ping_pong().await;
    server.shutdown().await;
    let rest = sub.expect_closed().await;
    assert_eq!(rest, "MSG s 1 4\r\nlast\r\n");
    assert!(TcpStream::connect(addr).await.is_err(), "listener is closed");
}
