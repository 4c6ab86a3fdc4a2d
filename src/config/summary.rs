//! The short human summary `warden check` prints: listeners, users and
//! whether each has permissions, limits. It never shows a secret: no
//! passwords, tokens, or route URLs (which may carry credentials).

use std::fmt::Write;

use super::duration::format_duration;
use super::options::{Options, Permissions, SubjectRules, TlsOptions, TlsVersion};

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
    match &o.cluster {
        Some(c) => {
            let name = c.name.as_deref().map_or(String::new(), |n| format!("\"{n}\" "));
            let auth = c
                .authorization
                .as_ref()
                .map_or("no route authorization".to_owned(), |a| format!("route user \"{}\"", a.user));
            let _ = writeln!(
                out,
                "cluster: {name}routes on {}:{} ({}), {} seed route(s), {auth}",
                c.host,
                c.port,
                tls_summary(c.tls.as_ref()),
                c.routes.len()
            );
        }
        None => out.push_str("cluster: off\n"),
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
    let _ = writeln!(
        out,
        "keep-alive: ping_interval {}, ping_max {}, write_deadline {}",
        format_duration(o.ping_interval),
        o.ping_max,
        format_duration(o.write_deadline)
    );
    out
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
    if t.verify_and_map {
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
    let Some(a) = &o.authorization else {
        out.push_str("authentication: none, anyone who can connect may publish and subscribe to anything\n");
        return;
    };
    if a.token.is_some() {
        out.push_str("authentication: token\n");
    } else if let Some(user) = &a.user {
        let _ = writeln!(out, "authentication: single user \"{user}\"");
    } else {
        let _ = writeln!(out, "authentication: {} user(s), {} nkey user(s)", a.users.len(), a.nkeys.len());
    }
    if let Some(d) = &a.default_permissions {
        let _ = writeln!(out, "  default permissions: {}", permissions_summary(d));
    }
    for u in &a.users {
        let perms = match (&u.permissions, &a.default_permissions) {
            (Some(p), _) => permissions_summary(p),
            (None, Some(_)) => "default permissions".to_owned(),
            (None, None) => "no permissions: may publish and subscribe to anything".to_owned(),
        };
        let _ = writeln!(out, "  user \"{}\": {perms}", u.user);
    }
    for u in &a.nkeys {
        let perms = match (&u.permissions, &a.default_permissions) {
            (Some(p), _) => permissions_summary(p),
            (None, Some(_)) => "default permissions".to_owned(),
            (None, None) => "no permissions: may publish and subscribe to anything".to_owned(),
        };
        let _ = writeln!(out, "  nkey user {}: {perms}", u.nkey);
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
    match (&r.allow, &r.deny) {
        (Some(a), Some(d)) => format!("allow [{}] deny [{}]", list(a), list(d)),
        (Some(a), None) => format!("allow [{}]", list(a)),
        (None, Some(d)) => format!("anything but [{}]", list(d)),
        (None, None) => "anything".to_owned(),
    }
}
