//! Which targets a delivery may reach (SSRF defence). A webhook URL is chosen by a user of the
//! API, so without this rule it would let them make the server call its own loopback, the
//! private network behind it, or a cloud metadata service. The rule is checked when an endpoint
//! is created or changed (422) and again on every attempt: the delivery client resolves names
//! through [`GuardedResolver`], so it connects only to addresses that passed the check (a name
//! that resolved to a public address at creation and to a private one later — DNS rebinding —
//! is refused at delivery), and it follows no redirect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::WebhookSettings;

/// How long resolving a target's host may take at creation.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a target is refused, as a field error of `url`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// A stable code (`https_required`, `forbidden_address`, `unresolvable`).
    pub code: &'static str,
    /// For people.
    pub message: String,
}

fn refusal(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// Whether `ip` is an address no webhook may reach: loopback, private, shared (CGNAT),
/// link-local (cloud metadata at 169.254.169.254 among them), unspecified, multicast,
/// broadcast, documentation, benchmarking and reserved ranges, in IPv4 and IPv6, IPv4
/// embedded in IPv6 (mapped, compatible, NAT64, 6to4) judged as the IPv4 it carries.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let segments = ip.segments();
    let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::a.b.c.d).
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_forbidden_v4(embedded(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_forbidden_v4(embedded(segments[6], segments[7]));
    }
    // 6to4 (2002:a.b.c.d::/48).
    if segments[0] == 0x2002 {
        return is_forbidden_v4(embedded(segments[1], segments[2]));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254, a metadata address, too)
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard-only
}

/// Checks a target's scheme and every address its host resolves to, as at creation.
pub async fn check(url: &url::Url, settings: &WebhookSettings) -> Result<(), Refusal> {
    if settings.https_only && url.scheme() != "https" {
        return Err(refusal("https_required", "must be an https URL in production"));
    }
    if settings.allow_private {
        return Ok(());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(domain)) => {
            let lookup = tokio::net::lookup_host((domain, port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => addrs.map(|a| a.ip()).collect(),
                _ => return Err(refusal("unresolvable", "its host does not resolve")),
            }
        }
        None => return Err(refusal("invalid_url", "must name a host")),
    };
    if addrs.is_empty() {
        return Err(refusal("unresolvable", "its host does not resolve"));
    }
    if let Some(ip) = addrs.into_iter().find(|ip| is_forbidden(*ip)) {
        return Err(refusal(
            "forbidden_address",
            format!("its host resolves to {ip}, a loopback, private, link-local or reserved address"),
        ));
    }
    Ok(())
}

/// An IP-literal host that may not be reached (the resolver is not asked about literals).
pub fn literal_refused(url: &url::Url, settings: &WebhookSettings) -> Option<IpAddr> {
    if settings.allow_private {
        return None;
    }
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    is_forbidden(ip).then_some(ip)
}

/// The delivery client's resolver: resolves with the system, then refuses a name when any of
/// its addresses is forbidden, so the connection goes only to an address that was checked.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// `TIENDA_WEBHOOK_ALLOW_PRIVATE`: check nothing.
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
                return Err(format!("{host} resolves to the forbidden address {}", bad.ip()).into());
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(text: &str) -> bool {
        is_forbidden(text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1:248:1893:25c8:1946",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }
}
