//! The short human summary `warden check` prints: listeners, users and
//! whether each has permissions, limits. It never shows a secret: no
//! passwords, tokens, or route URLs (which may carry credentials).

use std::fmt::Write;

use super::duration::format_duration;
use super::options::{
    AcceptRate, ExportKind, NkeyUser, Options, Permissions, ResolverOptions, SubjectRules, TlsOptions, TlsVersion, User,
};

/// A few lines describing what `options` will run.
pub fn summary(o: &Options) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "client listener: {}:{} ({})", o.host, o.port, tls_summary(o.tls.as_ref()));
    if let Some(name) = &o.server_name {
        let _ = writeln!(out, "server name: {name}");
    }
    match &o.http {
        Some(h) => {
            let scheme = if h.tls { "https" } else { "http" };
            let auth = match &o.http_authorization {
                Some(super::options::HttpAuthorization::Token(_)) => "bearer token required",
                Some(super::options::HttpAuthorization::User { .. }) => "basic auth required",
                None => "no authentication",
            };
            let _ = writeln!(out, "monitoring: {scheme}://{}:{} ({auth})", h.host, h.port);
        }
        None => out.push_str("monitoring: off\n"),
    }
    if let Some(audit) = &o.audit {
        let file = audit.file.as_ref().map_or("no file".to_owned(), |f| f.display().to_string());
        let published = if audit.publish { ", published on $SYS.AUDIT.>" } else { "" };
        let _ = writeln!(out, "audit trail: {file}{published}");
    }
    match &o.cluster {
        Some(c) if c.no_listener => out.push_str("cluster: off (the cluster block has no listen or port)\n"),
        Some(c) => {
            let name = c.name.as_deref().map_or(String::new(), |n| format!("\"{n}\" "));
            let auth = c.authorization.as_ref().map_or("no route authorization".to_owned(), |a| match &a.password {
                Some(_) => format!("route user \"{}\"", a.user),
                None => format!("route user \"{}\" named by its certificate", a.user),
            });
            let pool = match c.pool_size {
                0 => "one connection per peer".to_owned(),
                n => {
                    let pinned = o
                        .system_account
                        .iter()
                        .chain(c.pinned_accounts.iter().filter(|a| o.system_account.as_deref() != Some(a.as_str())));
                    let pinned: Vec<String> = pinned.map(|a| format!("\"{a}\"")).collect();
                    format!("pool of {n} per peer, pinned accounts [{}]", pinned.join(", "))
                }
            };
            let _ = writeln!(
                out,
                "cluster: {name}routes on {}:{} ({}), {} seed route(s), {auth}, {pool}",
                c.host,
                c.port,
                tls_summary(c.tls.as_ref()),
                c.routes.len()
            );
            if let Some(p) = &c.permissions {
                let _ = writeln!(
                    out,
                    "  route permissions: import {}; export {}",
                    rules_summary(p.import.as_ref()),
                    rules_summary(p.export.as_ref())
                );
            }
        }
        None => out.push_str("cluster: off\n"),
    }
    match &o.websocket {
        Some(ws) => {
            let tls = if ws.tls.is_some() { "TLS" } else { "no TLS (no_tls)" };
            let origins = match (ws.same_origin, ws.allowed_origins.len()) {
                (true, _) => "same origin only".to_owned(),
                (false, 0) => "any origin".to_owned(),
                (false, n) => format!("{n} allowed origin(s)"),
            };
            let proxies = match ws.trusted_proxies.len() {
                0 => "X-Forwarded-For ignored".to_owned(),
                n => format!("X-Forwarded-For from {n} trusted proxy range(s)"),
            };
            let _ = writeln!(
                out,
                "websocket: {}:{} ({tls}), {origins}, compression {}, {proxies}",
                ws.host,
                ws.port,
                if ws.compression { "on" } else { "off" }
            );
        }
        None => out.push_str("websocket: off\n"),
    }
    match &o.leafnodes {
        Some(l) => {
            let tls = if l.tls.is_some() { "TLS" } else { "no TLS" };
            let mapped = if l.tls.as_ref().is_some_and(|t| t.verify_and_map) { ", certificates mapped" } else { "" };
            let login = match (&l.authorization, l.allow_unauthenticated) {
                (_, true) => "INSECURE: no login required".to_owned(),
                (Some(a), _) => format!("{} leaf user(s) and {} leaf nkey(s){mapped}", a.users.len(), a.nkeys.len()),
                (None, _) => format!("leafs log in like clients{mapped}"),
            };
            let remotes = l.remotes.len();
            if l.accept {
                let _ = writeln!(out, "leafnodes: {}:{} ({tls}), {login}, {remotes} remote(s)", l.host, l.port);
            } else {
                let _ = writeln!(out, "leafnodes: no listener, {remotes} remote(s)");
            }
            for r in &l.remotes {
                let _ = writeln!(out, "  remote {}", remote_summary(r));
            }
        }
        None => out.push_str("leafnodes: off\n"),
    }
    match &o.gateway {
        Some(g) => {
            let tls = if g.tls.is_some() { "TLS" } else { "no TLS" };
            let login = match (&g.authorization, g.allow_unauthenticated) {
                (_, true) => "INSECURE: no login required".to_owned(),
                (Some(a), _) => format!("gateway user {:?}", a.user),
                (None, _) => "certificates verified".to_owned(),
            };
            let unknown =
                if g.reject_unknown_cluster { "unknown clusters refused" } else { "unknown clusters admitted" };
            let _ = writeln!(out, "gateway {:?}: {}:{} ({tls}), {login}, {unknown}", g.name, g.host, g.port);
            for r in &g.gateways {
                let _ = writeln!(out, "  gateway {:?}: {} url(s)", r.name, r.urls.len());
            }
        }
        None => out.push_str("gateway: off\n"),
    }
    auth_summary(o, &mut out);
    let subs = match o.max_subscriptions {
        0 => "unlimited".to_owned(),
        n => n.to_string(),
    };
    let _ = writeln!(
        out,
        "limits: max_connections {}, max_subscriptions {subs}, max_payload {}, max_pending {}, max_control_line {}",
        o.max_connections, o.max_payload, o.max_pending, o.max_control_line
    );
    if o.max_connections_per_ip > 0 {
        let _ = writeln!(out, "limits: max_connections_per_ip {}", o.max_connections_per_ip);
    }
    let mut rates = vec![format!("client {}", accept_rate_summary(&o.accept_rate))];
    if let Some(ws) = &o.websocket {
        rates.push(format!("websocket {}", accept_rate_summary(&ws.accept_rate)));
    }
    if let Some(l) = o.leafnodes.as_ref().filter(|l| l.accept) {
        rates.push(format!("leafnode {}", accept_rate_summary(&l.accept_rate)));
    }
    let _ = writeln!(out, "accept rate: {}", rates.join("; "));
    let ws = o.websocket.as_ref().filter(|w| w.proxy_protocol).map(|w| ("websocket", w.trusted_proxies.len()));
    let leaf = o.leafnodes.as_ref().filter(|l| l.proxy_protocol).map(|l| ("leafnode", l.trusted_proxies.len()));
    let client = o.proxy_protocol.then_some(("client", o.trusted_proxies.len()));
    let proxied: Vec<String> =
        [client, ws, leaf].into_iter().flatten().map(|(l, n)| format!("{l} from {n} trusted range(s)")).collect();
    if !proxied.is_empty() {
        let _ = writeln!(out, "PROXY protocol (header required): {}", proxied.join("; "));
    }
    let _ = writeln!(
        out,
        "keep-alive: ping_interval {}, ping_max {}, write_deadline {}",
        format_duration(o.ping_interval),
        o.ping_max,
        format_duration(o.write_deadline)
    );
    out
}

/// A listener's accept rate: `off`, or each budget with its burst.
fn accept_rate_summary(r: &AcceptRate) -> String {
    let mut parts = Vec::new();
    if r.conns_per_sec > 0 {
        parts.push(format!("{}/s (burst {})", r.conns_per_sec, r.burst_conns));
    }
    if r.conns_per_sec_per_ip > 0 {
        parts.push(format!("{}/s per address (burst {})", r.conns_per_sec_per_ip, r.burst_conns_per_ip));
    }
    match parts.is_empty() {
        true => "off".to_owned(),
        false => parts.join(", "),
    }
}

fn tls_summary(tls: Option<&TlsOptions>) -> String {
    let Some(t) = tls else {
        return "plain text, no TLS".to_owned();
    };
    let version = match t.min_version {
        TlsVersion::V1_2 => "1.2",
        TlsVersion::V1_3 => "1.3",
    };
    let mut s = format!("TLS {version}+");
    if let (true, Some(domain)) = (t.verify_and_map, &t.spiffe_trust_domain) {
        s.push_str(&format!(", client certificates verified and mapped to users by SPIFFE ID of {domain}"));
    } else if t.verify_and_map {
        s.push_str(", client certificates verified and mapped to users");
    } else if t.verify {
        s.push_str(", client certificates verified");
    }
    if t.handshake_first {
        s.push_str(", TLS first");
    }
    s
}

fn auth_summary(o: &Options, out: &mut String) {
    let in_accounts: usize = o.accounts.iter().map(|a| a.users.len()).sum();
    let nkeys_in_accounts: usize = o.accounts.iter().map(|a| a.nkeys.len()).sum();
    if let Some(operator) = &o.operator {
        let resolver = match &operator.resolver {
            ResolverOptions::Memory => format!("memory resolver, {} preloaded", operator.preload.len()),
            ResolverOptions::Directory { dir, full, .. } => {
                format!("{} directory resolver at {}", if *full { "full" } else { "cache" }, dir.display())
            }
        };
        let _ = writeln!(
            out,
            "authentication: operator mode, user JWTs of {} operator(s) ({resolver}); {} account(s) held",
            operator.operators.len(),
            o.accounts.len()
        );
        // Preloaded accounts by the name their JWT gives them, not only by key.
        for (key, token) in &operator.preload {
            let name = crate::jwt::decode::<crate::jwt::AccountClaims>(token, crate::jwt::now())
                .map(|jwt| jwt.registered.name)
                .unwrap_or_default();
            match name.is_empty() {
                true => {
                    let _ = writeln!(out, "  account {key} (preloaded, unnamed)");
                }
                false => {
                    let _ = writeln!(out, "  account \"{name}\" {key} (preloaded)");
                }
            }
        }
        accounts_summary(o, out);
        return;
    }
    match &o.authorization {
        None if in_accounts + nkeys_in_accounts == 0 => {
            out.push_str("authentication: none, anyone who can connect may publish and subscribe to anything\n");
        }
        Some(a) if a.token.is_some() => out.push_str("authentication: token\n"),
        Some(a) if a.user.is_some() => {
            let _ = writeln!(out, "authentication: single user \"{}\"", a.user.as_deref().unwrap_or_default());
        }
        a => {
            let users = a.as_ref().map_or(0, |a| a.users.len()) + in_accounts;
            let nkeys = a.as_ref().map_or(0, |a| a.nkeys.len()) + nkeys_in_accounts;
            let _ = writeln!(out, "authentication: {users} user(s), {nkeys} nkey user(s)");
        }
    }
    if let Some(a) = &o.authorization {
        users_summary(out, "  ", &a.users, &a.nkeys, a.default_permissions.as_ref());
        if let Some(d) = &a.delegation {
            delegation_summary(d, out);
        }
    }
    accounts_summary(o, out);
}

/// The external authorizer and the rules around it.
fn delegation_summary(d: &super::Delegation, out: &mut String) {
    let service = match &d.service {
        super::DelegateService::Callout { issuer, account, xkey } => format!(
            "auth callout in account \"{account}\", answers signed by {issuer}, {}",
            if xkey.is_some() { "encrypted (xkey)" } else { "not encrypted" }
        ),
        super::DelegateService::Http { url, .. } => match super::HttpTarget::parse(url) {
            Ok(target) => format!("http authorizer at {}", target.masked()),
            // Checked when the config was read; never printed whole.
            Err(_) => "http authorizer at <redacted>".to_owned(),
        },
    };
    let order = if d.local_first {
        "configured users first, only unknown clients asked"
    } else {
        "every client asked but auth_users and system users (nats-server's order)"
    };
    let reasons = if d.reveal_reason { "told to clients" } else { "kept in the log" };
    let _ = writeln!(
        out,
        "external authorizer: {service}; {order}; auth_users {:?}; its reasons {reasons}; at most {} in flight",
        d.auth_users, d.max_in_flight
    );
}

fn users_summary(out: &mut String, indent: &str, users: &[User], nkeys: &[NkeyUser], defaults: Option<&Permissions>) {
    if let Some(d) = defaults {
        let _ = writeln!(out, "{indent}default permissions: {}", permissions_summary(d));
    }
    let perms = |own: Option<&Permissions>| match (own, defaults) {
        (Some(p), _) => permissions_summary(p),
        (None, Some(_)) => "default permissions".to_owned(),
        (None, None) => "no permissions: may publish and subscribe to anything in its account".to_owned(),
    };
    for u in users {
        let rate = rate_summary(u.rate_limit.as_ref());
        let _ = writeln!(out, "{indent}user \"{}\": {}{rate}", u.user, perms(u.permissions.as_ref()));
    }
    for u in nkeys {
        let rate = rate_summary(u.rate_limit.as_ref());
        let _ = writeln!(out, "{indent}nkey user {}: {}{rate}", u.nkey, perms(u.permissions.as_ref()));
    }
}

/// `; rate_limit ...` for a limited user or account, else nothing.
fn rate_summary(limit: Option<&crate::config::RateLimit>) -> String {
    let Some(l) = limit else { return String::new() };
    let mut parts = Vec::new();
    if l.msgs_per_sec > 0 {
        parts.push(format!("{} msgs/s (burst {})", l.msgs_per_sec, l.burst_msgs));
    }
    if l.bytes_per_sec > 0 {
        parts.push(format!("{} bytes/s (burst {})", l.bytes_per_sec, l.burst_bytes));
    }
    if let Some(after) = l.close_after {
        parts.push(format!("closed after {} over it", format_duration(after)));
    }
    format!("; rate_limit {}", parts.join(", "))
}

/// Each subject mapping, with its destinations and weights
/// (`warden check --map SUBJECT` shows what one subject becomes).
fn mappings_summary(out: &mut String, indent: &str, rules: &[crate::subject::MappingRule]) {
    for r in rules {
        let dests: Vec<String> = r
            .destinations
            .iter()
            .map(|d| match &d.cluster {
                Some(c) => format!("\"{}\" {}% in cluster \"{c}\"", d.subject, d.weight),
                None => format!("\"{}\" {}%", d.subject, d.weight),
            })
            .collect();
        let _ = writeln!(out, "{indent}maps \"{}\" to {}", r.source, dests.join(", "));
    }
}

/// Each account with its users, exports (public ones called so), imports
/// and limits; then the system account.
fn accounts_summary(o: &Options, out: &mut String) {
    for a in &o.accounts {
        let _ = writeln!(out, "account \"{}\":", a.name);
        users_summary(out, "  ", &a.users, &a.nkeys, a.default_permissions.as_ref());
        for e in &a.exports {
            let what = match e.kind {
                ExportKind::Stream => "stream".to_owned(),
                ExportKind::Service { response, threshold } => {
                    format!("service ({} responses, threshold {})", response.as_str(), format_duration(threshold))
                }
            };
            let to = match &e.accounts {
                None => "PUBLIC: any account may import it".to_owned(),
                Some(names) => format!("to {}", names.join(", ")),
            };
            let _ = writeln!(out, "  exports {what} \"{}\" {to}", e.subject);
        }
        for i in &a.imports {
            let what = if i.is_service() { "service" } else { "stream" };
            let _ =
                writeln!(out, "  imports {what} \"{}\" from \"{}\" as \"{}\"", i.subject, i.account, i.local_subject());
        }
        let l = &a.limits;
        let limit = |v: Option<usize>| v.map_or("none".to_owned(), |n| n.to_string());
        if l.max_connections.is_some() || l.max_subscriptions.is_some() || l.max_payload.is_some() {
            let _ = writeln!(
                out,
                "  limits: max_connections {}, max_subscriptions {}, max_payload {}",
                limit(l.max_connections),
                limit(l.max_subscriptions),
                limit(l.max_payload)
            );
        }
        if l.rate_limit.is_some() {
            let _ = writeln!(out, "  limits{}", rate_summary(l.rate_limit.as_ref()).replacen(';', ":", 1));
        }
        mappings_summary(out, "  ", &a.mappings);
    }
    if !o.mappings.is_empty() {
        let _ = writeln!(out, "global account \"{}\":", super::GLOBAL_ACCOUNT);
        mappings_summary(out, "  ", &o.mappings);
    }
    match &o.system_account {
        Some(name) => {
            let _ = writeln!(out, "system account: \"{name}\"");
        }
        None => out.push_str("system account: none\n"),
    }
}

fn permissions_summary(p: &Permissions) -> String {
    let mut parts = vec![
        format!("publish {}", rules_summary(p.publish.as_ref())),
        format!("subscribe {}", rules_summary(p.subscribe.as_ref())),
    ];
    if let Some(r) = &p.allow_responses {
        let max = r.max.map_or("unlimited".to_owned(), |m| m.to_string());
        parts.push(format!("responses allowed (max {max}, for {})", format_duration(r.expires)));
    }
    parts.join("; ")
}

fn rules_summary(rules: Option<&SubjectRules>) -> String {
    let Some(r) = rules else {
        return "anything".to_owned();
    };
    let list = |l: &[String]| match l {
        [] => "nothing".to_owned(),
        l => l.join(", "),
    };
    let rules = match (&r.allow, &r.deny) {
        (Some(a), Some(d)) => format!("allow [{}] deny [{}]", list(a), list(d)),
        (Some(a), None) => format!("allow [{}]", list(a)),
        (None, Some(d)) if r.literal.is_some() => format!("deny [{}]", list(d)),
        (None, Some(d)) => format!("anything but [{}]", list(d)),
        (None, None) if r.literal.is_some() => String::new(),
        (None, None) => "anything".to_owned(),
    };
    match &r.literal {
        Some(l) if rules.is_empty() => format!("literal subjects in [{}]", list(l)),
        Some(l) => format!("{rules} literal subjects in [{}]", list(l)),
        None => rules,
    }
}

/// One leafnode remote: where it dials (credentials left out), as which
/// local account, how it logs in and whether over TLS.
fn remote_summary(r: &crate::config::LeafRemote) -> String {
    let urls: Vec<String> = r
        .urls
        .iter()
        .map(|u| match (u.split_once("://"), u.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
            _ => u.clone(),
        })
        .collect();
    let in_url = r.urls.iter().any(|u| u.split_once("://").is_some_and(|(_, rest)| rest.contains('@')));
    let login = match (&r.credentials, &r.nkey, in_url) {
        (Some(path), _, _) => format!("credentials {}", path.display()),
        (None, Some(_), _) => "an nkey seed".to_owned(),
        (None, None, true) => "the URL's user and password".to_owned(),
        (None, None, false) => "no credentials".to_owned(),
    };
    let tls = match &r.tls {
        Some(t) if t.client_certificate().is_some() => "mutual TLS",
        Some(_) => "TLS",
        None => "no TLS (a hub that requires it is not joined)",
    };
    let account = r.account.as_deref().unwrap_or(crate::config::GLOBAL_ACCOUNT);
    format!("{}: account {account}, logs in with {login}, {tls}", urls.join(", "))
}
