//! Address ranges (`addr/bits`), for a user JWT's `src` and the WebSocket
//! listener's `trusted_proxies`. An IPv4 range also matches the same
//! address mapped into IPv6 (`::ffff:a.b.c.d`), as a dual-stack socket
//! reports it. And [`source`]: the address every per-address budget counts.

use std::net::{IpAddr, Ipv6Addr};

/// The source a per-address budget (the failure throttle, the accept rate,
/// `max_connections_per_ip`, the pending-handshake bound, the log and
/// audit budgets) charges for `ip`: an IPv4 address as it is (also when a
/// dual-stack socket reports it mapped into IPv6), and an IPv6 address by
/// its /64, the block one subscriber (one host, one LAN) is routinely
/// given. Counting IPv6 by the whole address would let one attacker take
/// 2^64 fresh budgets.
pub fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

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

    #[test]
    fn an_ipv6_source_is_its_slash_64_and_ipv4_is_itself_mapped_or_not() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(source(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
        assert_eq!(source(ip("2001:db8:1:2::1")), source(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(source(ip("2001:db8:1:2::1")), source(ip("2001:db8:1:3::1")));
        assert_eq!(source(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(source(ip("10.0.0.1")), ip("10.0.0.1"));
        assert_eq!(source(ip("::1")), ip("::"));
    }
}
