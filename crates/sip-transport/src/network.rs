//! Noticing that every flow is suspect: the machine slept (the wall clock jumped ahead of the
//! monotonic one, which stops during suspend), or the route to a peer now leaves from another
//! local address (Wi-Fi to Ethernet, VPN up or down).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

/// A wall-clock jump beyond the monotonic clock larger than this means we were asleep.
const SLEEP_JUMP: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct Monitor {
    mono: Instant,
    wall: SystemTime,
    /// The local address the route to each peer used last time.
    sources: HashMap<IpAddr, IpAddr>,
}

impl Monitor {
    pub(crate) fn new() -> Self {
        Self { mono: Instant::now(), wall: SystemTime::now(), sources: HashMap::new() }
    }

    /// Checks for sleep and route changes towards `remotes`; returns why, if something changed.
    pub(crate) fn check(&mut self, remotes: &[SocketAddr]) -> Option<&'static str> {
        let (mono, wall) = (Instant::now(), SystemTime::now());
        let mono_elapsed = mono - self.mono;
        let wall_elapsed = wall.duration_since(self.wall).unwrap_or_default();
        (self.mono, self.wall) = (mono, wall);
        let slept = wall_elapsed > mono_elapsed + SLEEP_JUMP;

        let mut moved = false;
        let mut sources = HashMap::new();
        for remote in remotes {
            let Some(source) = route_source(*remote) else { continue };
            moved |= self.sources.get(&remote.ip()).is_some_and(|old| *old != source);
            sources.insert(remote.ip(), source);
        }
        self.sources = sources;
        if slept {
            Some("resumed from sleep")
        } else if moved {
            Some("route to the server changed")
        } else {
            None
        }
    }
}

/// The local address the OS would send from to reach `remote` (a connected UDP socket sends
/// nothing but asks the routing table).
fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let any: IpAddr =
        if remote.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let socket = UdpSocket::bind((any, 0)).ok()?;
    socket.connect(remote).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_loopback_is_no_change() {
        let mut monitor = Monitor::new();
        let remote: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
        assert_eq!(route_source(remote), Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(monitor.check(&[remote]), None);
        assert_eq!(monitor.check(&[remote]), None);
    }

    #[test]
    fn a_changed_source_is_reported() {
        let mut monitor = Monitor::new();
        let remote: SocketAddr = "127.0.0.1:5061".parse().expect("addr");
        monitor.sources.insert(remote.ip(), "192.0.2.1".parse().expect("ip"));
        assert_eq!(monitor.check(&[remote]), Some("route to the server changed"));
    }
}
