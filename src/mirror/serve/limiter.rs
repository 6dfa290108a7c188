//! The per-client request budget (off unless configured): a keyed GCRA
//! limiter (governor). IPv4 clients are keyed by address, IPv6 clients by
//! their /64 (one subscriber's usual allocation), so a client cannot get a
//! fresh budget per address. Entries are dropped only once their budget has
//! fully refilled, so pruning the table never resets anyone still limited.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{Quota, RateLimiter};

type Keyed =
    RateLimiter<IpAddr, governor::state::keyed::HashMapStateStore<IpAddr>, governor::clock::DefaultClock>;

pub struct Limiter {
    keyed: Option<Keyed>,
    checks: AtomicU64,
}

/// Entries above which fully refilled ones are pruned (every 4096 checks).
const PRUNE_ABOVE: usize = 10_000;

impl Limiter {
    pub fn new(per_minute: Option<u64>) -> Limiter {
        let keyed = per_minute
            .and_then(|n| NonZeroU32::new(n.min(u32::MAX as u64) as u32))
            .map(|n| RateLimiter::hashmap(Quota::per_minute(n)));
        Limiter { keyed, checks: AtomicU64::new(0) }
    }

    /// Whether a request from `ip` is within its budget.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let Some(k) = &self.keyed else { return true };
        if self.checks.fetch_add(1, Ordering::Relaxed) % 4096 == 0 && k.len() > PRUNE_ABOVE {
            k.retain_recent();
        }
        k.check_key(&key(ip)).is_ok()
    }
}

/// The budget's key: the IPv4 address (also when mapped into IPv6), or the
/// IPv6 /64.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) => IpAddr::V4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = a.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_budget_per_64_and_ipv4_per_address() {
        let l = Limiter::new(Some(3));
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.allow(a) && l.allow(b) && l.allow(a));
        assert!(!l.allow(b), "a fourth request from the same /64 was allowed");
        assert!(l.allow(other), "another /64 was limited");
        assert!(l.allow("192.0.2.1".parse().unwrap()));
        assert_eq!(key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert!(Limiter::new(None).allow(a));
    }

    #[test]
    fn pruning_the_table_does_not_reset_a_limited_client() {
        let l = Limiter::new(Some(2));
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(l.allow(a) && l.allow(a) && !l.allow(a));
        if let Some(k) = &l.keyed {
            k.retain_recent();
        }
        assert!(!l.allow(a), "pruning gave a limited client a fresh budget");
    }
}
