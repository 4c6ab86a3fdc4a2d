#![allow(clippy::disallowed_methods)] // Tests pick their own instants from the real clock.

use super::*;

fn limits(conns_per_sec: u32, burst_conns: u32, per_ip: u32, burst_per_ip: u32) -> AcceptRate {
    AcceptRate { conns_per_sec, burst_conns, conns_per_sec_per_ip: per_ip, burst_conns_per_ip: burst_per_ip }
}

fn ip(i: u32) -> IpAddr {
    IpAddr::from(0x0a00_0000u32.wrapping_add(i).to_be_bytes())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How many of `n` connections from `from` at `now` get in.
fn admitted(limiter: &mut AcceptLimiter, from: IpAddr, now: Instant, n: usize) -> usize {
    (0..n).filter(|_| limiter.admit(from, now).is_ok()).count()
}

#[test]
fn no_rate_is_no_limiter() {
    assert!(AcceptLimiter::new(&AcceptRate::default()).is_none());
}

#[test]
fn the_listener_takes_its_burst_then_its_rate() {
    let mut limiter = AcceptLimiter::new(&limits(10, 5, 0, 0)).unwrap();
    let t0 = Instant::now();
    assert_eq!(admitted(&mut limiter, ip(1), t0, 20), 5, "the burst");
    assert_eq!(limiter.admit(ip(2), t0).unwrap_err().over, Over::Listener, "from any address");
    assert_eq!(admitted(&mut limiter, ip(3), t0 + ms(99), 5), 0, "not yet one interval");
    assert_eq!(admitted(&mut limiter, ip(3), t0 + ms(100), 5), 1, "one interval: one more");
    assert_eq!(admitted(&mut limiter, ip(4), t0 + ms(10_000), 20), 5, "a quiet spell refills the burst, no more");
    // Over ten seconds at full tilt: the burst plus the rate.
    let mut limiter = AcceptLimiter::new(&limits(10, 5, 0, 0)).unwrap();
    let got: usize = (0..=10_000).map(|t| admitted(&mut limiter, ip(t), t0 + ms(t as u64), 3)).sum();
    assert_eq!(got, 5 + 100);
}

#[test]
fn one_address_cannot_take_the_listener_budget() {
    let mut limiter = AcceptLimiter::new(&limits(10, 10, 2, 2)).unwrap();
    let t0 = Instant::now();
    let storm = ip(666);
    assert_eq!(admitted(&mut limiter, storm, t0, 1000), 2, "its own burst");
    assert_eq!(limiter.admit(storm, t0).unwrap_err().over, Over::Address);
    let others: usize = (0..8).map(|i| admitted(&mut limiter, ip(i), t0, 1)).sum();
    assert_eq!(others, 8, "the rest of the listener's burst is left for other addresses");
    assert_eq!(limiter.admit(ip(100), t0).unwrap_err().over, Over::Listener);
}

#[test]
fn a_refused_connection_costs_nothing() {
    let mut limiter = AcceptLimiter::new(&limits(0, 0, 1, 1)).unwrap();
    let t0 = Instant::now();
    assert!(limiter.admit(ip(1), t0).is_ok());
    for t in 1..1000 {
        assert!(limiter.admit(ip(1), t0 + ms(t)).is_err(), "within the second");
    }
    assert!(limiter.admit(ip(1), t0 + ms(1000)).is_ok(), "refusals did not push its time back");

    // Refused by the listener, the address is not charged either.
    let mut limiter = AcceptLimiter::new(&limits(10, 1, 1, 1)).unwrap();
    assert!(limiter.admit(ip(1), t0).is_ok());
    assert_eq!(limiter.admit(ip(2), t0).unwrap_err().over, Over::Listener);
    assert!(limiter.admit(ip(2), t0 + ms(100)).is_ok(), "its own budget is whole");
}

#[test]
fn trusted_proxies_have_no_address_budget() {
    let proxy = Cidr::parse_or_address("10.9.0.0/16").unwrap();
    let mut limiter = AcceptLimiter::new(&limits(50, 50, 1, 1)).unwrap().exempting(vec![proxy]);
    let t0 = Instant::now();
    let behind = IpAddr::from([10, 9, 0, 1]);
    assert_eq!(admitted(&mut limiter, behind, t0, 100), 50, "the listener's budget only");
    assert_eq!(admitted(&mut limiter, ip(1), t0 + ms(20), 5), 1, "others keep theirs");
}

#[test]
fn a_storming_address_is_forgotten_last() {
    let mut limiter = AcceptLimiter::new(&limits(0, 0, 1, 2)).unwrap();
    let t0 = Instant::now();
    let storm = IpAddr::from([192, 0, 2, 1]);
    assert_eq!(admitted(&mut limiter, storm, t0, 10), 2);
    // Ten times the table's size of addresses, one connection each: every
    // one of them is owed less than the storm, so it is they who give way.
    for i in 0..10 * ADDRESS_SLOTS as u32 {
        assert!(limiter.admit(ip(i), t0).is_ok(), "a new address gets in");
        assert!(limiter.admit(storm, t0).is_err(), "the storm stays held ({i})");
    }
    assert!(limiter.admit(storm, t0 + ms(1000)).is_ok(), "until its own budget refills");
}

#[test]
fn the_table_is_fixed_in_size() {
    let mut limiter = AcceptLimiter::new(&limits(0, 0, 1, 1)).unwrap();
    let t0 = Instant::now();
    for i in 0..3 * ADDRESS_SLOTS as u32 {
        let _ = limiter.admit(ip(i), t0);
    }
    let table = limiter.addresses.as_ref().unwrap();
    assert_eq!(table.slots.len(), ADDRESS_SLOTS);
    assert!(table.slots.iter().flatten().count() <= ADDRESS_SLOTS);
}

#[test]
fn refusals_are_reported_at_most_once_a_second() {
    let mut limiter = AcceptLimiter::new(&limits(1, 1, 0, 0)).unwrap();
    let t0 = Instant::now();
    assert!(limiter.admit(ip(1), t0).is_ok());
    let first = limiter.admit(ip(1), t0).unwrap_err();
    assert_eq!(first.report, Some(Report { over_address: 0, over_listener: 1 }), "the first at once");
    for t in 1..=500 {
        assert_eq!(limiter.admit(ip(1), t0 + ms(t)).unwrap_err().report, None);
    }
    // Admitted at t0 + 1 s: the bucket refilled, then the storm goes on.
    assert!(limiter.admit(ip(1), t0 + ms(1000)).is_ok());
    let next = limiter.admit(ip(1), t0 + ms(1000)).unwrap_err();
    assert_eq!(next.report, Some(Report { over_address: 0, over_listener: 501 }), "the rest, counted");
}

#[tokio::test(start_paused = true)]
async fn paused_time_refills() {
    let mut limiter = AcceptLimiter::new(&limits(4, 2, 0, 0)).unwrap();
    assert_eq!(admitted(&mut limiter, ip(1), Instant::now(), 10), 2);
    tokio::time::advance(ms(250)).await;
    assert_eq!(admitted(&mut limiter, ip(1), Instant::now(), 10), 1);
    tokio::time::advance(ms(5000)).await;
    assert_eq!(admitted(&mut limiter, ip(1), Instant::now(), 10), 2);
}
