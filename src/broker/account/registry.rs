//! The accounts of a server by name, and how a configuration (at start
//! and on every reload) becomes their states.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::watch;

use super::imports::{ServiceImport, StreamImport};
use super::{Account, AccountState};
use crate::broker::router::{SubKind, Subscription};
use crate::config::{
    authorizing_export, check_accounts, AccountConfig, AccountLimits, AccountsError, ExportKind, ImportKind, Location,
    Options, DEFAULT_RESPONSE_THRESHOLD, GLOBAL_ACCOUNT,
};
use crate::subject::Mappings;

/// A service import's two internal subscriptions.
#[derive(Debug)]
pub(super) struct ImportSubs {
    pub(super) import: Arc<ServiceImport>,
    /// On the local subject, in the importer's index (never announced).
    pub(super) request: Arc<Subscription>,
    /// On `_R_.<prefix>.>`, in the exporter's index.
    pub(super) response: Arc<Subscription>,
}

/// Internal subscriptions a configuration change takes out of, and puts
/// into, the indexes.
#[derive(Debug, Default)]
pub struct Changes {
    /// To remove (imports that are gone).
    pub removed: Vec<Arc<Subscription>>,
    /// To insert (imports that are new).
    pub added: Vec<Arc<Subscription>>,
    /// Accounts the configuration no longer has.
    pub dropped: Vec<Arc<Account>>,
}

/// The accounts of a server.
#[derive(Debug)]
pub struct Accounts {
    map: RwLock<HashMap<Arc<str>, Arc<Account>>>,
    global: Arc<Account>,
    system: RwLock<Option<Arc<Account>>>,
    /// Serialises reconfigurations.
    configuring: Mutex<()>,
    /// Bumped after every reconfiguration (routes re-check interest they
    /// held for accounts this server did not host).
    changed: watch::Sender<u64>,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::new()
    }
}

impl Accounts {
    /// Only the global account.
    pub fn new() -> Accounts {
        let global = Arc::new(Account::new(GLOBAL_ACCOUNT.into(), false));
        let map = HashMap::from([(global.name.clone(), global.clone())]);
        Accounts {
            map: RwLock::new(map),
            global,
            system: RwLock::new(None),
            configuring: Mutex::new(()),
            changed: watch::channel(0).0,
        }
    }

    /// A receiver that changes after every reconfiguration.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The account called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Account>> {
        self.map.read().get(name).cloned()
    }

    /// The global account `$G`.
    pub fn global(&self) -> &Arc<Account> {
        &self.global
    }

    /// The system account, unless `no_system_account`.
    pub fn system(&self) -> Option<Arc<Account>> {
        self.system.read().clone()
    }

    /// Every account, sorted by name.
    pub fn all(&self) -> Vec<Arc<Account>> {
        let mut all: Vec<Arc<Account>> = self.map.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// Whether there is no account (never: `$G` always exists).
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }

    /// Makes the accounts what `opts` describes: creates new ones, marks
    /// and drops removed ones, and swaps in each account's new limits,
    /// exports and imports. Imports that did not change keep their state
    /// (open requests survive a reload). Returns the internal
    /// subscriptions for the caller to take out of and put into the
    /// indexes. Nothing changes if the rules between accounts fail.
    pub fn apply(&self, opts: &Options) -> Result<Changes, AccountsError> {
        check_accounts(opts)?;
        let _serial = self.configuring.lock();
        let mut wanted: Vec<(Arc<str>, Option<&AccountConfig>)> = vec![(self.global.name.clone(), None)];
        wanted.extend(opts.accounts.iter().map(|a| (Arc::from(a.name.as_str()), Some(a))));
        if let Some(sys) = &opts.system_account {
            if !wanted.iter().any(|(n, _)| **n == **sys) {
                wanted.push((Arc::from(sys.as_str()), None));
            }
        }
        let random = SystemRandom::new();
        let mut changes = Changes::default();
        let mut map = self.map.write();
        for (name, _) in &wanted {
            if !map.contains_key(name) {
                let account = Arc::new(Account::new(name.clone(), false));
                map.insert(name.clone(), account);
            }
        }
        let gone: Vec<Arc<str>> = map.keys().filter(|k| !wanted.iter().any(|(n, _)| n == *k)).cloned().collect();
        for name in gone {
            if let Some(account) = map.remove(&name) {
                account.removed.store(true, std::sync::atomic::Ordering::Release);
                changes.dropped.push(account);
            }
        }
        let mut states = Vec::with_capacity(wanted.len());
        for (name, config) in &wanted {
            let Some(account) = map.get(name).cloned() else { continue };
            let old = account.state();
            let is_system = opts.system_account.as_deref() == Some(&**name);
            let state = build_state(&account, *config, opts, &map, &old, is_system, &random)?;
            states.push((account, old, state));
        }
        for (account, old, new) in states {
            for import in &old.streams {
                if !new.streams.iter().any(|i| Arc::ptr_eq(i, import)) {
                    import.revoke();
                }
            }
            for subs in &old.internal_subs {
                if !new.internal_subs.iter().any(|s| Arc::ptr_eq(&s.import, &subs.import)) {
                    subs.import.revoke();
                    changes.removed.extend([subs.request.clone(), subs.response.clone()]);
                }
            }
            for subs in &new.internal_subs {
                if !old.internal_subs.iter().any(|s| Arc::ptr_eq(&s.import, &subs.import)) {
                    changes.added.extend([subs.request.clone(), subs.response.clone()]);
                }
            }
            account.has_mappings.store(new.mappings.is_some(), std::sync::atomic::Ordering::Release);
            *account.state.write() = Arc::new(new);
        }
        for account in &changes.dropped {
            account.has_mappings.store(false, std::sync::atomic::Ordering::Release);
            let old = std::mem::take(&mut *account.state.write());
            for import in &old.streams {
                import.revoke();
            }
            for subs in &old.internal_subs {
                subs.import.revoke();
                changes.removed.extend([subs.request.clone(), subs.response.clone()]);
            }
        }
        *self.system.write() = opts.system_account.as_deref().and_then(|s| map.get(s).cloned());
        drop(map);
        self.changed.send_modify(|n| *n += 1);
        Ok(changes)
    }
}

/// The new state of `account`, reusing the imports of `old` that did not change.
fn build_state(
    account: &Arc<Account>,
    config: Option<&AccountConfig>,
    opts: &Options,
    map: &HashMap<Arc<str>, Arc<Account>>,
    old: &AccountState,
    is_system: bool,
    random: &SystemRandom,
) -> Result<AccountState, AccountsError> {
    let mut state = AccountState {
        limits: config.map_or_else(AccountLimits::default, |c| c.limits),
        exports: config.map(|c| c.exports.clone()).unwrap_or_default(),
        is_system,
        updated: Some(SystemTime::now()),
        msg_trace: config.and_then(|c| c.msg_trace.clone()),
        rate: config.and_then(|c| c.limits.rate_limit).map(|l| Arc::new(crate::broker::rate::SharedRate::new(l))),
        ..AccountState::default()
    };
    let index = config.and_then(|c| opts.accounts.iter().position(|a| a.name == c.name));
    let rules = match config {
        Some(c) => &c.mappings,
        None if account.name.as_ref() == GLOBAL_ACCOUNT => &opts.mappings,
        None => &Vec::new(),
    };
    let cluster = opts.cluster.as_ref().and_then(|c| c.name.as_deref());
    state.mappings = Mappings::compile(rules, cluster)
        .map_err(|(_, err)| AccountsError {
            location: index.map_or(Location::SystemAccount, Location::Account),
            message: format!("mappings: {err}"),
        })?
        .map(Arc::new);
    let Some(config) = config else { return Ok(state) };
    let index = index.unwrap_or(0);
    for (i, import) in config.imports.iter().enumerate() {
        let at = Location::Import(index, i);
        let fail = |message: String| AccountsError { location: at, message };
        let exporter = map.get(import.account.as_str()).cloned().ok_or_else(|| fail("exporter not found".into()))?;
        let exporter_config = opts.accounts.iter().find(|a| a.name == import.account);
        let export = exporter_config
            .and_then(|e| authorizing_export(e, import, &config.name))
            .ok_or_else(|| fail(format!("import {:?} not authorized", import.subject)))?;
        match &import.kind {
            ImportKind::Stream { .. } => {
                let reused = old.streams.iter().find(|s| s.config == *import && Arc::ptr_eq(&s.exporter, &exporter));
                let compiled = match reused {
                    Some(same) => same.clone(),
                    None => Arc::new(StreamImport::new(import, exporter).map_err(|e| fail(e.to_string()))?),
                };
                state.streams.push(compiled);
            }
            ImportKind::Service { .. } => {
                let (response, threshold) = match export.kind {
                    ExportKind::Service { response, threshold } => (response, threshold),
                    ExportKind::Stream => (Default::default(), DEFAULT_RESPONSE_THRESHOLD),
                };
                let capacity = config.limits.max_pending_responses;
                let reused = old.internal_subs.iter().find(|s| {
                    let si = &s.import;
                    si.config == *import
                        && Arc::ptr_eq(&si.exporter, &exporter)
                        && (si.response, si.threshold, si.allow_trace) == (response, threshold, export.allow_trace)
                        && si.capacity() == capacity
                });
                let subs = match reused {
                    Some(same) => ImportSubs {
                        import: same.import.clone(),
                        request: same.request.clone(),
                        response: same.response.clone(),
                    },
                    None => {
                        let mut seed = [0u8; 8];
                        random.fill(&mut seed).map_err(|_| fail("no randomness for the reply prefix".into()))?;
                        let si = Arc::new(
                            ServiceImport::new(
                                import,
                                account,
                                exporter.clone(),
                                (response, threshold, export.allow_trace),
                                capacity,
                                u64::from_le_bytes(seed),
                            )
                            .map_err(|e| fail(e.to_string()))?,
                        );
                        let request =
                            Arc::new(Subscription::internal(account, si.local_subject(), SubKind::Service(si.clone())));
                        let response = Arc::new(Subscription::internal(
                            &exporter,
                            &si.response_subject(),
                            SubKind::Responses(si.clone()),
                        ));
                        ImportSubs { import: si, request, response }
                    }
                };
                state.services.push(subs.import.clone());
                state.internal_subs.push(subs);
            }
        }
    }
    Ok(state)
}
