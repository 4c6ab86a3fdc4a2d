use super::*;
use crate::config::load_str;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

fn applied(line: &str, config: &str) -> Result<Options, FlagError> {
    let mut opts = if config.is_empty() { Options::default() } else { load_str(config, "f.conf").unwrap().options };
    parse(&args(line))?.apply(&mut opts)?;
    Ok(opts)
}

#[test]
fn go_flag_syntax_single_and_double_dash_equals_and_next_argument() {
    let f = parse(&args("-p 4333 --addr=0.0.0.0 -DV -c=/etc/nats.conf --no_advertise=false -t")).unwrap();
    assert_eq!(f.port, Some(4333));
    assert_eq!(f.host.as_deref(), Some("0.0.0.0"));
    assert_eq!((f.debug, f.trace), (Some(true), Some(true)));
    assert_eq!(f.config, Some(PathBuf::from("/etc/nats.conf")));
    assert_eq!(f.no_advertise, Some(false));
    assert!(f.test_config);
    // A value may itself start with a dash.
    assert_eq!(parse(&args("-p -1")).unwrap().port, Some(-1));
    assert_eq!(
        parse(&args("-sl=ldm=/var/run/nats/nats.pid")).unwrap().signal.as_deref(),
        Some("ldm=/var/run/nats/nats.pid")
    );
    assert!(parse(&args("version")).unwrap().version);
    assert!(parse(&args("--help")).unwrap().help);
    assert!(parse(&args("-- version")).unwrap().version);
}

#[test]
fn every_flag_of_the_nats_py_harness_maps_onto_options() {
    let line = "-p 4223 -m 8223 -a 127.0.0.1 --user foo --pass bar -DV --cluster_listen nats://127.0.0.1:6223 \
                --routes nats://127.0.0.1:6223,nats://127.0.0.1:6224 --cluster_name CLUSTER";
    let o = applied(line, "").unwrap();
    assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 4223));
    assert_eq!(o.http, Some(HttpOptions { host: "127.0.0.1".into(), port: 8223, tls: false }));
    let auth = o.authorization.unwrap();
    assert_eq!((auth.user.as_deref(), auth.password.map(|p| p.expose().to_owned())), (Some("foo"), Some("bar".into())));
    assert!(o.debug && o.trace);
    let c = o.cluster.unwrap();
    assert_eq!((c.host.as_str(), c.port, c.name.as_deref()), ("127.0.0.1", 6223, Some("CLUSTER")));
    assert_eq!(c.routes, vec!["nats://127.0.0.1:6223", "nats://127.0.0.1:6224"]);
    let o = applied("--auth s3cret", "").unwrap();
    assert_eq!(o.authorization.unwrap().token.map(|t| t.expose().to_owned()), Some("s3cret".into()));
    let o = applied("--tls --tlscert c.pem --tlskey k.pem --tlsverify --tlscacert ca.pem", "").unwrap();
    let tls = o.tls.unwrap();
    assert_eq!(
        (tls.cert_file, tls.key_file, tls.ca_file, tls.verify),
        ("c.pem".into(), "k.pem".into(), Some("ca.pem".into()), true)
    );
    let o =
        applied("-P /run/w.pid --ports_file_dir /run -l /var/log/w.log -T=false -n edge-1 --server_name edge-2", "")
            .unwrap();
    assert_eq!(o.pid_file, Some("/run/w.pid".into()));
    assert_eq!(o.ports_file_dir, Some("/run".into()));
    assert_eq!(o.log_file, Some("/var/log/w.log".into()));
    assert!(!o.logtime);
    assert_eq!(o.server_name.as_deref(), Some("edge-2"), "the last of the aliases wins");
}

#[test]
fn flags_override_the_config_file() {
    let config = "listen: 127.0.0.1:4000\nserver_name: from-file\nhttp: 127.0.0.1:8000\n\
                  tls { cert_file: a.pem, key_file: b.pem }\ncluster { port: 6000, authorization { user: r, password: p } }\n";
    let o = applied("-p 4001 -n from-flag -m 8001 --tls=false --cluster nats://u:pw@127.0.0.1:-1", config).unwrap();
    assert_eq!((o.port, o.server_name.as_deref()), (4001, Some("from-flag")));
    assert_eq!(o.http.unwrap().port, 8001);
    assert!(o.tls.is_none(), "--tls=false removes the config's TLS");
    let c = o.cluster.unwrap();
    assert_eq!(c.port, 0, "-1 is any free port");
    assert_eq!(c.authorization.map(|a| a.user), Some("u".into()), "credentials from the URL");
    let o = applied("--cluster nats://127.0.0.1:6001", config).unwrap();
    assert!(o.cluster.unwrap().authorization.is_none(), "a URL without credentials clears the file's, as nats-server");
    assert!(applied("--cluster=", config).unwrap().cluster.is_none(), "an empty cluster URL turns clustering off");
}

#[test]
fn unknown_unsupported_and_malformed_flags_are_errors_naming_the_flag() {
    assert_eq!(parse(&args("--bogus")).unwrap_err(), FlagError::Unknown("bogus".into()));
    let err = parse(&args("-js")).unwrap_err();
    assert_eq!(err.to_string(), "flag -js (JetStream) is not supported by warden");
    assert!(matches!(parse(&args("--profile 6060")).unwrap_err(), FlagError::Unsupported { .. }));
    assert!(matches!(applied("-r foo.com:514", ""), Err(FlagError::BadValue { .. })), "a URL is needed");
    assert_eq!(parse(&args("-p")).unwrap_err(), FlagError::MissingValue("p".into()));
    assert!(matches!(parse(&args("-p abc")).unwrap_err(), FlagError::BadValue { .. }));
    assert!(matches!(parse(&args("-D=maybe")).unwrap_err(), FlagError::BadValue { .. }));
    assert_eq!(parse(&args("serve")).unwrap_err(), FlagError::Positional("serve".into()));
    assert!(matches!(applied("-p 70000", ""), Err(FlagError::BadValue { .. })));
    assert!(matches!(applied("--routes nats://h:1", ""), Err(FlagError::Conflict(_))), "routes need --cluster");
    assert!(matches!(applied("--tls --tlscert c.pem", ""), Err(FlagError::Conflict(_))), "a key is needed");
    assert!(matches!(applied("--user u --auth t", ""), Err(FlagError::Conflict(_))));
    let users = "authorization { users = [ {user: a, password: b} ] }";
    assert!(matches!(applied("--user u --pass p", users), Err(FlagError::Conflict(_))));
    assert!(matches!(applied("-ms 8443", ""), Err(FlagError::Conflict(_))), "https monitoring needs TLS");
}

#[test]
fn warden_flags_keep_working() {
    let o = applied("--listen 127.0.0.1:5000 --http :9000", "").unwrap();
    assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", 5000));
    assert_eq!(o.http, Some(HttpOptions { host: "127.0.0.1".into(), port: 9000, tls: false }));
    assert_eq!(parse(&args("--log-level debug")).unwrap().log_level.as_deref(), Some("debug"));
    let o = applied("--cluster nats://127.0.0.1:6222 --insecure_allow_unauthenticated_routes", "").unwrap();
    assert!(o.cluster.unwrap().allow_unauthenticated);
}

/// `-h` names every flag the parser takes, and takes every flag it names:
/// the table is the parser's, the help text is written for nats-server's
/// layout, so this keeps them from drifting apart.
#[test]
fn help_lists_every_flag_and_every_listed_flag_parses() {
    let listed: Vec<&str> = USAGE
        .split(|c: char| c.is_whitespace() || [',', '/', '(', '.'].contains(&c))
        .filter_map(|word| {
            let name = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
            name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()).then_some(name)
        })
        .collect();
    for flag in FLAGS {
        for name in flag.names {
            assert!(listed.contains(name), "-h does not list -{name}");
        }
    }
    for name in listed {
        let known = FLAGS.iter().any(|f| f.names.contains(&name));
        let refused = parse(&args(&format!("-{name}"))).is_err_and(|e| matches!(e, FlagError::Unsupported { .. }));
        assert!(known || refused, "-h lists -{name}, which is not a flag");
    }
}

#[test]
fn syslog_flags_set_the_sink_over_the_config() {
    let o = applied("-s -r udp://127.0.0.1:514", "").unwrap();
    assert!(o.syslog);
    assert_eq!(o.syslog_target(), Some(crate::config::SyslogTarget::Udp("127.0.0.1:514".into())));
    let o = applied("--remote_syslog=tcp://b:2", "remote_syslog: \"udp://a:1\"").unwrap();
    assert_eq!(o.remote_syslog, Some(crate::config::SyslogTarget::Tcp("b:2".into())), "the flag wins");
    let o = applied("--syslog", "log_file: /tmp/w.log").unwrap();
    assert_eq!(o.syslog_target(), None, "log_file wins, as nats-server chooses");
}
