//! Locating SIP servers (RFC 3263 §4): NAPTR picks the transport, SRV the servers in priority
//! order (weighted within a priority, RFC 2782), A/AAAA their addresses. The result is the
//! ordered list of flows the engine fails over along.
//!
//! The decisions live in [`locate`], over a small [`Dns`] trait, so they are tested against a
//! table; [`HickoryDns`] asks real DNS servers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use rand::Rng;
use sip_engine::{Flow, Transport};

/// Why a lookup gave nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The name or the record type does not exist: go on to the next step of RFC 3263.
    #[error("no such record")]
    NoRecords,
    /// DNS itself failed (unreachable, SERVFAIL): stop, the answer is unknown.
    #[error("{0}")]
    Failed(String),
}

/// A NAPTR record (RFC 3403) as RFC 3263 uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub service: String,
    pub replacement: String,
}

/// An SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// The DNS queries RFC 3263 needs.
pub trait Dns {
    fn naptr(&self, name: &str) -> impl Future<Output = Result<Vec<Naptr>, LookupError>>;
    fn srv(&self, name: &str) -> impl Future<Output = Result<Vec<Srv>, LookupError>>;
    fn ip(&self, name: &str) -> impl Future<Output = Result<Vec<IpAddr>, LookupError>>;
}

/// Why a SIP URI could not be turned into servers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    #[error("'{0}' is not a SIP URI")]
    NotSipUri(String),
    #[error("{host} has no SIP server in DNS")]
    NotFound { host: String },
    #[error("DNS lookup for {host} failed: {reason}")]
    Dns { host: String, reason: String },
}

/// The parts of a SIP URI that decide where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Destination {
    secure: bool,
    host: String,
    port: Option<u16>,
    transport: Option<Transport>,
}

fn parse(uri: &str) -> Result<Destination, LocateError> {
    let bad = || LocateError::NotSipUri(uri.to_owned());
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let (scheme, rest) = uri.split_once(':').ok_or_else(bad)?;
    let secure = match scheme.to_ascii_lowercase().as_str() {
        "sip" => false,
        "sips" => true,
        _ => return Err(bad()),
    };
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split([';', '?']).next().unwrap_or_default();
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let port = port.map(|p| p.parse::<u16>().map_err(|_| bad())).transpose()?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Destination { secure, host: host.to_owned(), port, transport: Transport::from_uri(uri) })
}

/// The host of a SIP or SIPS URI (an IPv6 address without brackets).
pub(crate) fn host(uri: &str) -> Option<String> {
    parse(uri).ok().map(|d| d.host)
}

/// The SRV service name for a transport (RFC 3263 §4.1).
fn srv_name(transport: Transport, host: &str) -> String {
    let service = match transport {
        Transport::Tls => "_sips._tcp",
        Transport::Tcp => "_sip._tcp",
        Transport::Udp => "_sip._udp",
    };
    format!("{service}.{}", fqdn(host))
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') { name.to_owned() } else { format!("{name}.") }
}

/// The flows to try for a request to `uri`, best first.
pub async fn locate(dns: &impl Dns, uri: &str) -> Result<Vec<Flow>, LocateError> {
    let d = parse(uri)?;
    let host = d.host.clone();
    let failed = |e: LookupError| match e {
        LookupError::NoRecords => LocateError::NotFound { host: host.clone() },
        LookupError::Failed(reason) => LocateError::Dns { host: host.clone(), reason },
    };
    // RFC 3261 §26.2: a sips URI goes over TLS whatever its transport parameter says
    // (`transport=tcp` means TLS over TCP); UDP cannot carry it.
    if d.secure && d.transport == Some(Transport::Udp) {
        return Err(LocateError::NotSipUri(format!("{uri} (sips over UDP)")));
    }
    let d = if d.secure { Destination { transport: Some(Transport::Tls), ..d } } else { d };
    let default_transport = d.transport.unwrap_or(Transport::Udp);
    // §4.2: a numeric host, or an explicit port, needs no NAPTR or SRV.
    if let Ok(ip) = d.host.parse::<IpAddr>() {
        let port = d.port.unwrap_or(default_transport.default_port());
        return Ok(vec![Flow::new(default_transport, SocketAddr::new(ip, port))]);
    }
    if let Some(port) = d.port {
        let ips = dns.ip(&fqdn(&d.host)).await.map_err(failed)?;
        return Ok(ips
            .into_iter()
            .map(|ip| Flow::new(default_transport, (ip, port).into()))
            .collect());
    }
    // §4.1: the transport from the URI, else from NAPTR, else the first SRV that exists.
    let mut services: Vec<(Transport, String)> = vec![];
    if let Some(transport) = d.transport {
        services.push((transport, srv_name(transport, &d.host)));
    } else {
        match dns.naptr(&fqdn(&d.host)).await {
            Ok(mut records) => {
                records.sort_by_key(|n| (n.order, n.preference));
                for record in records {
                    let transport = match record.service.to_ascii_uppercase().as_str() {
                        "SIPS+D2T" => Transport::Tls,
                        "SIP+D2T" if !d.secure => Transport::Tcp,
                        "SIP+D2U" if !d.secure => Transport::Udp,
                        _ => continue,
                    };
                    if record.flags.eq_ignore_ascii_case("s") {
                        services.push((transport, fqdn(&record.replacement)));
                    }
                }
            }
            Err(LookupError::NoRecords) => {}
            Err(e) => return Err(failed(e)),
        }
        if services.is_empty() {
            // No NAPTR: every transport we support, the most secure first.
            let mut transports = vec![Transport::Tls];
            if !d.secure {
                transports.extend([Transport::Tcp, Transport::Udp]);
            }
            services = transports.into_iter().map(|t| (t, srv_name(t, &d.host))).collect();
        }
    }
    let mut flows = vec![];
    for (transport, name) in services {
        let records = match dns.srv(&name).await {
            Ok(records) => records,
            Err(LookupError::NoRecords) => continue,
            Err(e) => return Err(failed(e)),
        };
        // Ordered before the next await: the thread's RNG cannot cross one on a work-stealing
        // runtime (the desktop app's).
        let ordered = order_srv(records, &mut rand::rng());
        for srv in ordered {
            // RFC 2782: a target of "." means the service is decidedly not available.
            if srv.target == "." || srv.target.is_empty() {
                continue;
            }
            match dns.ip(&fqdn(&srv.target)).await {
                Ok(ips) => flows.extend(
                    ips.into_iter().map(|ip| Flow::new(transport, SocketAddr::new(ip, srv.port))),
                ),
                Err(LookupError::NoRecords) => {}
                Err(e) => return Err(failed(e)),
            }
        }
        // The transport NAPTR or the URI chose is the only one; without NAPTR, the first
        // transport that has servers.
        if !flows.is_empty() {
            break;
        }
    }
    if flows.is_empty() {
        // §4.2: no SRV: the host's own addresses on the default port.
        let port = default_transport.default_port();
        let ips = dns.ip(&fqdn(&d.host)).await.map_err(failed)?;
        flows = ips.into_iter().map(|ip| Flow::new(default_transport, (ip, port).into())).collect();
    }
    flows.dedup();
    if flows.is_empty() {
        return Err(LocateError::NotFound { host: d.host });
    }
    Ok(flows)
}

/// RFC 2782: lowest priority first; within a priority, a weighted random order (a record of
/// weight 0 has a small chance to come first).
fn order_srv(mut records: Vec<Srv>, rng: &mut impl Rng) -> Vec<Srv> {
    records.sort_by_key(|r| (r.priority, r.weight));
    let mut out = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let end = records.iter().position(|r| r.priority != priority).unwrap_or(records.len());
        let mut group: Vec<Srv> = records.drain(..end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = rng.random_range(0..=total);
            let mut running = 0;
            let index = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            out.push(group.remove(index));
        }
    }
    out
}

/// No DNS at all: only IP addresses can be located.
#[derive(Debug, Clone, Copy)]
pub struct NoDns;

impl Dns for NoDns {
    async fn naptr(&self, _: &str) -> Result<Vec<Naptr>, LookupError> {
        Err(LookupError::Failed("no DNS configuration".into()))
    }
    async fn srv(&self, _: &str) -> Result<Vec<Srv>, LookupError> {
        Err(LookupError::Failed("no DNS configuration".into()))
    }
    async fn ip(&self, _: &str) -> Result<Vec<IpAddr>, LookupError> {
        Err(LookupError::Failed("no DNS configuration".into()))
    }
}

/// DNS over hickory: the system's resolvers, or the given servers (settings `sip.dns_servers`).
#[derive(Debug, Clone)]
pub struct HickoryDns {
    resolver: TokioResolver,
}

impl HickoryDns {
    /// The system configuration (`/etc/resolv.conf`, the Windows or macOS settings).
    pub fn system() -> Result<Self, LocateError> {
        let mut builder = TokioResolver::builder_tokio().map_err(|e| LocateError::Dns {
            host: "(system configuration)".into(),
            reason: e.to_string(),
        })?;
        tune(builder.options_mut());
        let resolver = builder.build().map_err(|e| LocateError::Dns {
            host: "(system configuration)".into(),
            reason: e.to_string(),
        })?;
        Ok(Self { resolver })
    }

    /// Only these servers, over UDP with TCP for truncated answers.
    pub fn with_servers(servers: &[SocketAddr]) -> Result<Self, LocateError> {
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut udp = ConnectionConfig::udp();
                udp.port = server.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = server.port();
                NameServerConfig::new(server.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut options = ResolverOpts::default();
        tune(&mut options);
        options.use_hosts_file = ResolveHosts::Never;
        let config = ResolverConfig::from_name_servers(name_servers);
        let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()
            .map_err(|e| LocateError::Dns {
                host: "(DNS servers)".into(),
                reason: e.to_string(),
            })?;
        Ok(Self { resolver })
    }

    async fn lookup(&self, name: &str, kind: RecordType) -> Result<Vec<RData>, LookupError> {
        let lookup = self.resolver.lookup(name, kind).await.map_err(lookup_error)?;
        Ok(lookup.answers().iter().map(|r| r.data.clone()).collect())
    }
}

/// A dead DNS server must cost about two seconds, not fifteen: calls wait on it.
fn tune(options: &mut ResolverOpts) {
    options.timeout = Duration::from_millis(700);
    options.attempts = 2;
}

fn lookup_error(error: NetError) -> LookupError {
    if error.is_no_records_found() || error.is_nx_domain() {
        LookupError::NoRecords
    } else {
        LookupError::Failed(error.to_string())
    }
}

impl Dns for HickoryDns {
    async fn naptr(&self, name: &str) -> Result<Vec<Naptr>, LookupError> {
        let records = self.lookup(name, RecordType::NAPTR).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::NAPTR(n) => Some(Naptr {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    service: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_string(),
                }),
                _ => None,
            })
            .collect())
    }

    async fn srv(&self, name: &str) -> Result<Vec<Srv>, LookupError> {
        let records = self.lookup(name, RecordType::SRV).await?;
        Ok(records
            .into_iter()
            .filter_map(|r| match r {
                RData::SRV(s) => Some(Srv {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_string(),
                }),
                _ => None,
            })
            .collect())
    }

    async fn ip(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let ips = self.resolver.lookup_ip(name).await.map_err(lookup_error)?;
        Ok(ips.iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;

    use super::*;

    /// DNS from a table; a name missing from it has no records.
    #[derive(Default)]
    struct Table {
        naptr: HashMap<String, Vec<Naptr>>,
        srv: HashMap<String, Vec<Srv>>,
        ip: HashMap<String, Vec<IpAddr>>,
    }

    impl Dns for Table {
        async fn naptr(&self, name: &str) -> Result<Vec<Naptr>, LookupError> {
            self.naptr.get(name).cloned().ok_or(LookupError::NoRecords)
        }
        async fn srv(&self, name: &str) -> Result<Vec<Srv>, LookupError> {
            self.srv.get(name).cloned().ok_or(LookupError::NoRecords)
        }
        async fn ip(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
            self.ip.get(name).cloned().ok_or(LookupError::NoRecords)
        }
    }

    fn srv(priority: u16, port: u16, target: &str) -> Srv {
        Srv { priority, weight: 0, port, target: target.into() }
    }

    fn naptr(order: u16, service: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference: 10,
            flags: "S".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    fn table() -> Table {
        let mut t = Table::default();
        let ip = |s: &str| vec![s.parse::<IpAddr>().expect("ip")];
        t.ip.insert("a.sip.test.".into(), ip("192.0.2.1"));
        t.ip.insert("b.sip.test.".into(), ip("192.0.2.2"));
        t.ip.insert("sip.test.".into(), ip("192.0.2.9"));
        t
    }

    fn flows(list: &[(Transport, &str)]) -> Vec<Flow> {
        list.iter().map(|(t, a)| Flow::new(*t, a.parse().expect("addr"))).collect()
    }

    async fn run(t: &Table, uri: &str) -> Result<Vec<Flow>, LocateError> {
        locate(t, uri).await
    }

    #[tokio::test]
    async fn srv_priorities_order_the_servers() {
        let mut t = table();
        t.srv.insert(
            "_sip._udp.sip.test.".into(),
            vec![srv(20, 5062, "b.sip.test."), srv(10, 5060, "a.sip.test.")],
        );
        let got = run(&t, "sip:sip.test").await.expect("found");
        use Transport::Udp;
        assert_eq!(got, flows(&[(Udp, "192.0.2.1:5060"), (Udp, "192.0.2.2:5062")]));
    }

    #[tokio::test]
    async fn naptr_chooses_the_transport_and_sips_insists_on_tls() {
        let mut t = table();
        t.naptr.insert(
            "sip.test.".into(),
            vec![
                naptr(20, "SIP+D2U", "_sip._udp.sip.test."),
                naptr(10, "SIPS+D2T", "_sips._tcp.sip.test."),
            ],
        );
        t.srv.insert("_sips._tcp.sip.test.".into(), vec![srv(10, 5061, "a.sip.test.")]);
        t.srv.insert("_sip._udp.sip.test.".into(), vec![srv(10, 5060, "b.sip.test.")]);
        let got = run(&t, "sip:alice@sip.test").await.expect("found");
        assert_eq!(got, flows(&[(Transport::Tls, "192.0.2.1:5061")]), "order 10 wins");
        t.naptr.insert("sip.test.".into(), vec![naptr(10, "SIP+D2U", "_sip._udp.sip.test.")]);
        assert_eq!(
            run(&t, "sips:alice@sip.test").await.expect("found"),
            flows(&[(Transport::Tls, "192.0.2.1:5061")]),
            "a sips URI ignores non-TLS NAPTRs and looks for _sips._tcp"
        );
    }

    #[tokio::test]
    async fn explicit_transport_port_and_address_skip_steps() {
        let mut t = table();
        t.srv.insert("_sip._tcp.sip.test.".into(), vec![srv(10, 5070, "a.sip.test.")]);
        assert_eq!(
            run(&t, "sip:sip.test;transport=tcp").await.expect("found"),
            flows(&[(Transport::Tcp, "192.0.2.1:5070")])
        );
        assert_eq!(
            run(&t, "sip:sip.test:5080").await.expect("found"),
            flows(&[(Transport::Udp, "192.0.2.9:5080")]),
            "a port means A/AAAA only"
        );
        assert_eq!(
            run(&t, "sip:sip.test;transport=tls").await.expect("falls back"),
            flows(&[(Transport::Tls, "192.0.2.9:5061")]),
            "no SRV: the host itself on the default port"
        );
        assert_eq!(
            run(&t, "<sip:bob@[2001:db8::1]>").await.expect("literal"),
            flows(&[(Transport::Udp, "[2001:db8::1]:5060")])
        );
        assert!(matches!(run(&t, "tel:+15551234").await, Err(LocateError::NotSipUri(_))));
        assert_eq!(
            run(&t, "sips:sip.test:5071;transport=tcp").await.expect("TLS"),
            flows(&[(Transport::Tls, "192.0.2.9:5071")]),
            "sips means TLS whatever the transport parameter"
        );
        assert!(run(&t, "sips:sip.test;transport=udp").await.is_err());
        assert!(matches!(run(&t, "sip:nowhere.test").await, Err(LocateError::NotFound { .. })));
    }

    #[test]
    fn weights_share_out_the_first_place() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let records = vec![
            Srv { priority: 1, weight: 90, port: 1, target: "heavy".into() },
            Srv { priority: 1, weight: 10, port: 2, target: "light".into() },
            Srv { priority: 0, weight: 0, port: 3, target: "first".into() },
        ];
        let mut heavy_first = 0;
        for _ in 0..1000 {
            let order = order_srv(records.clone(), &mut rng);
            assert_eq!(order[0].target, "first", "priority 0 always leads");
            if order[1].target == "heavy" {
                heavy_first += 1;
            }
        }
        assert!((850..=950).contains(&heavy_first), "{heavy_first} of 1000");
    }
}
