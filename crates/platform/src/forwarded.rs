//! Whose address is this request from? The peer's, unless the peer is a proxy of ours (a load
//! balancer in front of the gateway; the gateway in front of a service), in which case the
//! right-most `X-Forwarded-For` entry that is not one of ours: the entries to its left are
//! whatever the client claimed.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// `10.0.0.0/8, 127.0.0.1` (a bare address is a network of one).
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        parse_nets(list).map(Self)
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address, given the peer the connection came from.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(&peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        forwarded.into_iter().rev().find(|ip| !self.contains(ip)).unwrap_or(peer)
    }
}

/// `10.0.0.0/8, 127.0.0.1` → networks (a bare address is a network of one).
pub fn parse_nets(list: &str) -> anyhow::Result<Vec<IpNet>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("{s:?} is not an address or a network (CIDR)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").expect("nets");
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.0.0.2"));
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!(trusted.client_ip(ip("10.0.0.1"), &headers), ip("203.0.113.9"), "behind our proxies");
        assert_eq!(
            trusted.client_ip(ip("198.51.100.1"), &headers),
            ip("198.51.100.1"),
            "a client's own claim"
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("10.0.0.1"), &headers),
            ip("10.0.0.1"),
            "none trusted"
        );
    }

    #[test]
    fn a_bad_network_is_a_configuration_error() {
        assert!(TrustedProxies::parse("10.0.0.0/8, nonsense").is_err());
        assert!(TrustedProxies::parse("").expect("empty").0.is_empty());
    }
}
