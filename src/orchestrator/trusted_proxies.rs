//! [`TrustedProxies`] (`[http] trusted_proxies`, `client_ip_header`): which reverse proxies are
//! believed, and the client address behind them (`crate::orchestrator::client_ip` applies it
//! to each request).
//!
//! The header is read right to left, the way proxies append to it: each address that is
//! itself a trusted proxy is skipped, and the first one that is not is the client. An entry
//! that is not an address stops the walk at the last address trusted so far. A peer that is
//! not a trusted proxy is the client, whatever it sends in the header.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// The header a proxy names the client in, unless configured otherwise.
pub const DEFAULT_CLIENT_IP_HEADER: &str = "x-forwarded-for";

/// The reverse proxies whose client-address header is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: HeaderName,
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self {
            nets: Vec::new(),
            header: HeaderName::from_static(DEFAULT_CLIENT_IP_HEADER),
        }
    }
}

impl TrustedProxies {
    /// From `trusted_proxies` (addresses or CIDR networks) and `client_ip_header`; the error
    /// names the entry that is neither.
    pub fn parse(entries: &[String], header: Option<&str>) -> Result<Self, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "[http] trusted_proxies: `{entry}` is not an IP address or a CIDR \
                             network (e.g. \"127.0.0.1\" or \"10.0.0.0/8\")"
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let header = match header {
            None => HeaderName::from_static(DEFAULT_CLIENT_IP_HEADER),
            Some(name) => HeaderName::try_from(name.trim().to_ascii_lowercase()).map_err(|_| {
                format!(
                    "[http] client_ip_header: `{name}` is not a header name (e.g. \
                     \"x-forwarded-for\" or \"x-real-ip\")"
                )
            })?,
        };
        Ok(Self { nets, header })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer` (see the module doc).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // Every occurrence of the header, in order, as one comma-separated list.
        let entries: Vec<&str> = headers
            .get_all(&self.header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_entry(entry) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:4711`,
/// `203.0.113.7:4711`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        let nets: Vec<String> = nets.iter().map(|s| (*s).to_owned()).collect();
        TrustedProxies::parse(&nets, None).expect("valid")
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("a header value"));
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        let h = headers(&["203.0.113.7"]);
        assert_eq!(p.client_ip(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        assert_eq!(p.client_ip(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        // Anyone else may send the header; it is ignored.
        assert_eq!(p.client_ip(ip("198.51.100.9"), &h), ip("198.51.100.9"));
        // No proxies configured: the peer, always.
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.1.2.3"), &h),
            ip("10.1.2.3")
        );
        // A trusted peer without the header is the client itself.
        assert_eq!(
            p.client_ip(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_header_is_read_right_to_left_past_trusted_hops() {
        let p = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&["1.2.3.4, 203.0.113.7, 10.0.0.5", "10.0.0.6"]);
        assert_eq!(p.client_ip(ip("10.0.0.7"), &h), ip("203.0.113.7"));
        let h = headers(&["[2001:db8::1]:4711, 10.0.0.5"]);
        assert_eq!(p.client_ip(ip("10.0.0.7"), &h), ip("2001:db8::1"));
        // Garbage stops the walk at the last trusted address.
        let h = headers(&["203.0.113.7, nonsense, 10.0.0.5"]);
        assert_eq!(p.client_ip(ip("10.0.0.7"), &h), ip("10.0.0.5"));
    }

    #[test]
    fn bad_entries_and_header_names_are_refused_by_name() {
        let e = TrustedProxies::parse(&["10.0.0.0/33".into()], None).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
        let e = TrustedProxies::parse(&[], Some("not a header")).unwrap_err();
        assert!(e.contains("client_ip_header"), "{e}");
        let p = TrustedProxies::parse(&["::1".into()], Some("X-Real-IP")).expect("valid");
        let mut h = HeaderMap::new();
        h.insert("x-real-ip", "203.0.113.7".parse().expect("a value"));
        assert_eq!(p.client_ip(ip("::1"), &h), ip("203.0.113.7"));
    }
}
