//! Address ranges (`addr/bits`), for a user JWT's `src` and the WebSocket
//! listener's `trusted_proxies`. An IPv4 range also matches the same
//! address mapped into IPv6 (`::ffff:a.b.c.d`), as a dual-stack socket
//! reports it.

use std::net::IpAddr;

/// A parsed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    bits: u32,
}

impl Cidr {
    /// Reads `addr/bits`.
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, bits) = text.trim().split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let bits: u32 = bits.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Cidr { addr, bits })
    }

    /// Reads `addr/bits`, or a single address.
    pub fn parse_or_address(text: &str) -> Option<Cidr> {
        match text.trim().parse::<IpAddr>() {
            Ok(addr) => Some(Cidr { addr, bits: if addr.is_ipv4() { 32 } else { 128 } }),
            Err(_) => Cidr::parse(text),
        }
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_single_addresses() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let r = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(r.contains(ip("10.1.2.3")) && !r.contains(ip("10.2.0.1")));
        assert!(r.contains(ip("::ffff:10.1.9.9")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::1/128").unwrap().contains(ip("::1")));
        assert!(!Cidr::parse("::1/128").unwrap().contains(ip("127.0.0.1")));
        assert!(Cidr::parse("10.0.0.1").is_none(), "a range needs its bits");
        assert!(Cidr::parse_or_address("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        for bad in ["10.0.0.0/33", "x/8", "::/129", "1.2.3.4/"] {
            assert!(Cidr::parse_or_address(bad).is_none(), "{bad}");
        }
    }
}
