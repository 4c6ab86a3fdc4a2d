//! The server's own subscribers: an [`Inbox`] receives what is delivered to
//! the internal subscriptions made with it (the `$SYS` services), as owned
//! copies on a bounded channel, so the delivering publisher never waits for
//! the service and a flood of requests cannot grow a queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::account::Account;

/// Messages an inbox holds before it drops new ones.
pub const INBOX_CAPACITY: usize = 1024;

/// One message delivered to an inbox subscription.
#[derive(Debug)]
pub struct InboxMsg {
    /// The account the message was published in.
    pub account: Arc<Account>,
    /// Its subject.
    pub subject: Box<[u8]>,
    /// Its reply subject.
    pub reply: Option<Box<[u8]>>,
    /// Header bytes at the start of `message`, if any.
    pub header_len: Option<usize>,
    /// Headers and payload.
    pub message: Box<[u8]>,
    /// The publishing client on this server (`None`: a route or the server).
    pub client: Option<u64>,
}

impl InboxMsg {
    /// The payload, without headers.
    pub fn payload(&self) -> &[u8] {
        self.message.get(self.header_len.unwrap_or(0)..).unwrap_or_default()
    }
}

/// The receiving end's handle, shared by its subscriptions.
#[derive(Debug)]
pub struct Inbox {
    tx: mpsc::Sender<InboxMsg>,
    /// Whether its subscriptions are announced to routes (so peers send
    /// their requests here), or answer for this server's clients only.
    pub announce: bool,
    dropped: AtomicU64,
}

impl Inbox {
    /// An inbox and the receiver its service reads.
    pub fn new(announce: bool) -> (Arc<Inbox>, mpsc::Receiver<InboxMsg>) {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        (Arc::new(Inbox { tx, announce, dropped: AtomicU64::new(0) }), rx)
    }

    /// Queues a message; false (and counted) if the service is behind or gone.
    pub fn offer(&self, msg: InboxMsg) -> bool {
        let queued = self.tx.try_send(msg).is_ok();
        if !queued {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// Messages dropped because the inbox was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
