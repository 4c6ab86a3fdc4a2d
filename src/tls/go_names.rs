//! TLS names as nats-server (Go) writes them, for monitoring and auth
//! callout requests.

/// nats-server writes TLS versions as `1.2`, `1.3`; rustls names them `TLSv1_3`.
pub fn go_version_name(rustls_name: &str) -> String {
    match rustls_name.strip_prefix("TLSv") {
        Some(v) => v.replace('_', "."),
        None => rustls_name.to_owned(),
    }
}

/// Go names TLS 1.3 suites `TLS_AES_128_GCM_SHA256` where rustls writes
/// `TLS13_AES_128_GCM_SHA256`; TLS 1.2 names are the same in both.
pub fn go_cipher_name(rustls_name: &str) -> String {
    match rustls_name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => rustls_name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_names_as_nats_server_writes_them() {
        assert_eq!(go_version_name("TLSv1_3"), "1.3");
        assert_eq!(go_version_name("TLSv1_2"), "1.2");
        assert_eq!(go_cipher_name("TLS13_AES_256_GCM_SHA384"), "TLS_AES_256_GCM_SHA384");
        assert_eq!(
            go_cipher_name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        );
    }
}
