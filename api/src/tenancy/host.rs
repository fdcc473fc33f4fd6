//! Classifying a Host header against the base domain. Pure, so it is tested
//! exhaustively without a server.

/// What a Host names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKind {
    /// `api.{base}`, the bare base domain, or an IP literal (health checks,
    /// local development): the general API host.
    Api,
    /// `{subdomain}.{base}`.
    Subdomain(String),
    /// Any other name: possibly a tenant's custom domain.
    CustomDomain(String),
    /// Not a host name at all.
    Invalid,
}

/// `host` as sent (any case, optional port); `base` is lower-case, no port.
pub fn classify_host(host: &str, base: &str) -> HostKind {
    let host = strip_port(host.trim()).to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if host.is_empty() {
        return HostKind::Invalid;
    }
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return HostKind::Api;
    }
    if !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return HostKind::Invalid;
    }
    if host == base || host == format!("api.{base}") {
        return HostKind::Api;
    }
    match host.strip_suffix(base).and_then(|s| s.strip_suffix('.')) {
        // Only one label deep: `a.b.{base}` is no tenant of ours.
        Some(sub) if !sub.is_empty() && !sub.contains('.') => HostKind::Subdomain(sub.to_owned()),
        Some(_) => HostKind::Invalid,
        None => HostKind::CustomDomain(host.to_owned()),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // [::1]:8080 -> [::1]
        return host.split_once(']').map_or(host, |(h, _)| &host[..=h.len()]);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_classified_against_the_base_domain() {
        let b = "aggios.app";
        assert_eq!(classify_host("acme.aggios.app", b), HostKind::Subdomain("acme".into()));
        assert_eq!(classify_host("ACME.Aggios.App:443", b), HostKind::Subdomain("acme".into()));
        assert_eq!(classify_host("acme.aggios.app.", b), HostKind::Subdomain("acme".into()));
        assert_eq!(classify_host("api.aggios.app", b), HostKind::Api);
        assert_eq!(classify_host("aggios.app", b), HostKind::Api);
        assert_eq!(classify_host("127.0.0.1:8080", b), HostKind::Api);
        assert_eq!(classify_host("[::1]:8080", b), HostKind::Api);
        assert_eq!(classify_host("portal.acme.com", b), HostKind::CustomDomain("portal.acme.com".into()));
        assert_eq!(classify_host("x.acme.aggios.app", b), HostKind::Invalid);
        assert_eq!(classify_host("evil-aggios.app", b), HostKind::CustomDomain("evil-aggios.app".into()));
        assert_eq!(classify_host("", b), HostKind::Invalid);
        assert_eq!(classify_host("a b", b), HostKind::Invalid);
        assert_eq!(classify_host("acme.aggios.app/../x", b), HostKind::Invalid);
    }
}
