//! `audit { file, max_file_size, max_files, publish, denials_per_second }`
//! (warden only): where the audit trail of logins, permission denials and
//! admin actions goes. The trail itself is `src/audit/`.

use std::path::PathBuf;

use super::error::{invalid, ConfigError};
use super::options::AuditOptions;
use super::schema::{Block, Opt, Reload, Step::Key, Ty};
use super::section;
use super::value::Value;

/// Most denials a second one source may have recorded.
const MAX_DENIALS_PER_SECOND: i64 = 10_000;

/// Reads an `audit` block: it must send the records somewhere.
pub(crate) fn read(value: &Value) -> Result<AuditOptions, ConfigError> {
    let mut audit = AuditOptions::default();
    AUDIT.read_value("audit", value, &mut audit)?;
    if audit.file.is_none() && !audit.publish {
        return Err(invalid(value, "audit needs a `file`, or `publish: true`, or both: its records must go somewhere"));
    }
    Ok(audit)
}

/// The audit trail's options. The file is opened once, at start.
pub(crate) static AUDIT: Block<AuditOptions> = Block {
    unsupported: &[],
    steps: &[
        Key(
            &Opt::new(&["file"], Ty::Path, Reload::Restart)
                .means(
                    "Audit records are appended to this file, one JSON object a line (created with mode 0600); \
                    a file that cannot be opened stops the server from starting",
                )
                .differs("warden only"),
            |e, a, _| super::load::path_string(&e.value, "audit file").map(|p| a.file = Some(PathBuf::from(p))),
        ),
        Key(
            &Opt::new(&["max_file_size"], Ty::Size, Reload::Restart)
                .means("The audit file is moved aside past this many bytes and a new one started; 0 = never")
                .default("100MB")
                .differs("warden only"),
            |e, a, _| section::count(&e.value, "max_file_size", 0).map(|n| a.max_file_size = n as u64),
        ),
        Key(
            &Opt::new(&["max_files"], Ty::Integer, Reload::Restart)
                .means("Audit files kept on rotation, the current one included; 0 = all")
                .default("10")
                .differs("warden only"),
            |e, a, _| section::count(&e.value, "max_files", 0).map(|n| a.max_files = n),
        ),
        Key(
            &Opt::new(&["publish"], Ty::Bool, Reload::Restart)
                .means("Every record is also published on `$SYS.AUDIT.<server id>.<type>` in the system account")
                .default("false")
                .differs("warden only"),
            |e, a, _| section::boolean(&e.value, "publish").map(|b| a.publish = b),
        ),
        Key(
            &Opt::new(&["denials_per_second"], Ty::Integer, Reload::Restart)
                .means(
                    "Permission denials recorded a second per source address; the rest are counted, and a \
                    summary record names the address, the count and the users",
                )
                .default("10")
                .differs("warden only"),
            |e, a, _| {
                let n = section::integer_in(&e.value, "denials_per_second", 1, MAX_DENIALS_PER_SECOND)?;
                a.denials_per_second = u32::try_from(n).unwrap_or(u32::MAX);
                Ok(())
            },
        ),
    ],
};
