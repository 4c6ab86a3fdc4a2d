//! Starts the audit trail (`audit {}`) with the server, before any
//! listener accepts: its file (a file that cannot be opened stops the
//! start), its `$SYS.AUDIT` publisher, and the records of certificate
//! rotations. The records themselves are made where things happen.

use std::sync::{Arc, Weak};

use time::OffsetDateTime;

use super::StartError;
use crate::audit::{Event, ReloadCause, Sink};
use crate::broker::{Broker, InternalClient, Message};
use crate::config::ConfigChanges;
use crate::logfile::{LogFile, Rotation};
use crate::tls::Rotated;

/// Starts the trail if `audit {}` is configured.
pub(super) fn start(broker: &Arc<Broker>) -> Result<(), StartError> {
    let Some(opts) = &broker.opts.audit else { return Ok(()) };
    let file = match &opts.file {
        Some(path) => {
            let rotation = Rotation { size_limit: opts.max_file_size, max_num: opts.max_files, private: true };
            let file = LogFile::open(path, rotation)
                .map_err(|source| StartError::Audit { path: path.display().to_string(), source })?;
            Some(file)
        }
        None => None,
    };
    let publish = opts.publish.then(|| publisher(Arc::downgrade(broker)));
    let identity = &broker.identity;
    broker
        .audit
        .start(&identity.name, &identity.id, Sink { file, publish })
        .map_err(|source| StartError::Audit { path: "(writer thread)".into(), source })?;
    let trail = Arc::downgrade(broker);
    broker.tls_rotation.observe(Box::new(move |listener, rotated| {
        if let Some(broker) = trail.upgrade() {
            record_rotation(&broker, listener, rotated);
        }
    }));
    Ok(())
}

/// Publishes each record in the system account (as it is when the record
/// is written: a reload may replace it), as the server.
fn publisher(broker: Weak<Broker>) -> crate::audit::Publish {
    Box::new(move |subject, body| {
        let Some(broker) = broker.upgrade() else { return };
        let Some(system) = broker.accounts.system() else { return };
        let msg = Message { subject: subject.as_bytes(), reply: None, header_len: None, message: body, buffer: None };
        InternalClient::new(broker.clone()).publish(&system, &msg);
    })
}

fn record_rotation(broker: &Broker, listener: &'static str, rotated: Rotated<'_>) {
    match rotated {
        Rotated::Replaced(certificates) => {
            for c in certificates {
                let not_after = OffsetDateTime::from_unix_timestamp(c.not_after)
                    .ok()
                    .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                    .unwrap_or_default();
                broker.audit.record(Event::CertificateRotated {
                    listener: listener.to_owned(),
                    subject: c.subject.clone(),
                    serial: c.serial.clone(),
                    not_after,
                });
            }
        }
        Rotated::Failed(error) => broker
            .audit
            .record(Event::CertificateRotationFailed { listener: listener.to_owned(), error: error.to_owned() }),
    }
}

/// Records a reload that `cause` asked for: applied, with what it
/// changed, or refused, with why.
pub(super) fn record_reload(broker: &Broker, cause: ReloadCause, outcome: Result<ConfigChanges, String>) {
    let (applied, error, changes) = match outcome {
        Ok(changes) => (true, None, Some(changes)),
        Err(why) => (false, Some(why), None),
    };
    broker.audit.record(Event::Reload { cause, applied, error, changes });
}
