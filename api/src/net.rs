//! Plain network types: address ranges, and the client address of a request
//! behind trusted proxies. No I/O here; settings and the HTTP layer share it.

use std::net::IpAddr;

/// An address range such as `10.0.0.0/8` or `::1/128`; a bare address is a
/// range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(u128::from(u32::from(net)) << 96, u128::from(u32::from(ip)) << 96, self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(u128::from(net), u128::from(ip), self.prefix),
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix));
    a & mask == b & mask
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) as the IPv4 they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client of a request: the peer itself, unless the peer is a trusted
/// proxy; then `X-Forwarded-For` is read from the right (each proxy appends
/// the address it saw) and the first address that is not a trusted proxy is
/// the client. Entries a client wrote itself sit to the left of that and are
/// never reached.
pub fn client_address(peer: Option<IpAddr>, forwarded_for: Option<&str>, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = canonical(peer?);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(header) = forwarded_for else { return Some(peer) };
    let mut client = peer;
    for entry in header.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !is_trusted(client) {
                    break;
                }
            }
            // Garbage in the chain: stop at the last address a trusted hop vouched for.
            Err(_) => break,
        }
    }
    Some(client)
}

/// A lower-case DNS name: labels of 1-63 letters, digits and inner hyphens.
pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// A web origin as browsers send it in `Origin`: `http` or `https`, a host
/// (a DNS name, an IPv4 literal or a bracketed IPv6 one), an optional port,
/// lower case, and nothing else.
pub fn is_web_origin(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")) else {
        return false;
    };
    let (host_ok, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let Some((v6, after)) = bracketed.split_once(']') else { return false };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (v6.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        (host.parse::<std::net::Ipv4Addr>().is_ok() || is_hostname(host), port)
    };
    host_ok && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_origins_are_scheme_host_and_port_only() {
        for ok in ["https://app.example.com", "http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080", "https://[::1]"] {
            assert!(is_web_origin(ok), "{ok}");
        }
        for bad in ["app.example.com", "https://app.example.com/", "https://App.example.com", "ftp://x.com", "http://x.com:0", "http://x.com:99999", "https://[::1", "https://[::1]x", "*"] {
            assert!(!is_web_origin(bad), "{bad}");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_they_should() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")) && !net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_none() && Cidr::parse("traefik").is_none());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let trusted = [Cidr::parse("172.18.0.0/16").unwrap()];
        // A client talking directly cannot pick its address.
        assert_eq!(client_address(Some(ip("203.0.113.7")), Some("1.2.3.4"), &trusted), Some(ip("203.0.113.7")));
        // Behind the proxy: the address the proxy appended.
        assert_eq!(client_address(Some(ip("172.18.0.2")), Some("1.2.3.4, 198.51.100.9"), &trusted), Some(ip("198.51.100.9")));
        // Proxies chained inside the trusted range are skipped.
        assert_eq!(client_address(Some(ip("172.18.0.2")), Some("198.51.100.9, 172.18.0.5"), &trusted), Some(ip("198.51.100.9")));
        // No header: the proxy itself.
        assert_eq!(client_address(Some(ip("172.18.0.2")), None, &trusted), Some(ip("172.18.0.2")));
        assert_eq!(client_address(None, Some("1.2.3.4"), &trusted), None);
    }
}
