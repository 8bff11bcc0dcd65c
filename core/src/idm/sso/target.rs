//! Where this server may send requests on an identity provider's word. A discovery document names
//! the URLs this server itself calls (`token_endpoint`, `userinfo_endpoint`, `jwks_uri`), so a
//! provider, or whoever can change its document, could point it at this machine or its network
//! (a cloud's metadata service at 169.254.169.254, an admin interface on 10.0.0.1): server-side
//! request forgery. Only public unicast addresses are allowed, for these URLs and for the issuer's
//! own discovery document alike; loopback too when `SSO_ALLOW_HTTP_ISSUER` is set (tests and
//! local identity providers run there).
//!
//! Two checks, because a name can resolve differently from one lookup to the next: [`check_url`]
//! before a document's URLs are used (an IP literal by its class, a name by every address it
//! resolves to, with a message for the operator), and [`GuardedResolver`], the HTTP client's
//! resolver, which refuses a name that resolves to a refused address when the connection is made.
//! reqwest's own resolver has no such filter, hence this one.

use openidconnect::reqwest;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether a request may go to `ip`: a public unicast address, or loopback with `allow_loopback`.
/// Refused: unspecified, private (10/8, 172.16/12, 192.168/16, fc00::/7), shared (100.64/10),
/// link-local (169.254/16, fe80::/10), loopback (127/8, ::1) unless allowed, multicast,
/// broadcast, documentation, benchmarking and reserved ranges; IPv6 forms that carry an IPv4
/// address (mapped, NAT64, 6to4) are judged by that address.
pub fn allowed_ip(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => allowed_v4(v4, allow_loopback),
        IpAddr::V6(v6) => allowed_v6(v6, allow_loopback),
    }
}

fn allowed_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    let [a, b, c, _] = ip.octets();
    let special = a == 0 // "this network", 0.0.0.0 included
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || (a == 100 && (b & 0xc0) == 64) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240; // reserved
    !special
}

fn allowed_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return allow_loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return allowed_v4(v4, allow_loopback);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address they carry.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return allowed_v4(embedded(s[6], s[7]), allow_loopback);
    }
    if s[0] == 0x2002 {
        return allowed_v4(embedded(s[1], s[2]), allow_loopback);
    }
    let special = s[..6].iter().all(|&x| x == 0) // ::/96: unspecified, IPv4-compatible
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || (s[0] == 0x0100 && s[1..4].iter().all(|&x| x == 0)); // discard-only
    !special
}

fn refused(what: &str, ip: IpAddr) -> String {
    format!(
        "{what} points to {ip}, a private, loopback, link-local or reserved address; \
         requests go to public addresses only"
    )
}

/// Checks where `url` leads before it is used: an IP literal by its class, a name by every
/// address it resolves to now (a name that resolves to none is refused too).
pub async fn check_url(url: &url::Url, allow_loopback: bool) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(name)) => {
            let port = url.port_or_known_default().unwrap_or(443);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("{url}: the name {name} cannot be resolved: {e}"))?
                .collect();
            if addrs.is_empty() {
                return Err(format!("{url}: the name {name} resolves to no address"));
            }
            return match addrs.iter().find(|a| !allowed_ip(a.ip(), allow_loopback)) {
                Some(bad) => Err(refused(url.as_str(), bad.ip())),
                None => Ok(()),
            };
        }
        None => return Err(format!("{url} names no host")),
    };
    if allowed_ip(ip, allow_loopback) {
        Ok(())
    } else {
        Err(refused(url.as_str(), ip))
    }
}

type ResolveError = Box<dyn std::error::Error + Send + Sync>;

/// The identity providers' HTTP client's resolver: the system's, refusing a name when any of its
/// addresses is refused by [`allowed_ip`] (so a name cannot pass [`check_url`] and then resolve
/// to 169.254.169.254 when the connection is made). IP literals never reach a resolver; they
/// are judged by [`check_url`].
pub struct GuardedResolver {
    pub allow_loopback: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found,
                Err(e) => return Err(ResolveError::from(e)),
            };
            let addrs: Vec<SocketAddr> = found.collect();
            if let Some(bad) = addrs.iter().find(|a| !allowed_ip(a.ip(), allow_loopback)) {
                return Err(ResolveError::from(refused(&host, bad.ip())));
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_addresses_are_allowed() {
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            for allow_loopback in [false, true] {
                assert!(allowed_ip(ip(public), allow_loopback), "{public}");
            }
        }
    }

    #[test]
    fn private_link_local_and_reserved_addresses_are_refused() {
        for private in [
            "169.254.169.254",
            "169.254.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "::a9fe:a9fe",
        ] {
            for allow_loopback in [false, true] {
                assert!(!allowed_ip(ip(private), allow_loopback), "{private}");
            }
        }
    }

    #[test]
    fn loopback_only_when_allowed() {
        for loopback in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            assert!(!allowed_ip(ip(loopback), false), "{loopback}");
            assert!(allowed_ip(ip(loopback), true), "{loopback}");
        }
    }

    async fn allowed_url(url: &str, allow_loopback: bool) -> Result<(), String> {
        check_url(&url::Url::parse(url).unwrap(), allow_loopback).await
    }

    #[tokio::test]
    async fn urls_are_judged_by_their_host() {
        for allow_loopback in [false, true] {
            let metadata = "http://169.254.169.254/latest/meta-data/";
            let err = allowed_url(metadata, allow_loopback).await.unwrap_err();
            assert!(err.contains("169.254.169.254"), "{err}");
            let link_local = "https://[fe80::1]/jwks";
            assert!(allowed_url(link_local, allow_loopback).await.is_err());
            let public = "https://8.8.8.8/token";
            assert!(allowed_url(public, allow_loopback).await.is_ok());
        }
        let local = "http://127.0.0.1:4000/token";
        assert!(allowed_url(local, false).await.is_err());
        assert!(allowed_url(local, true).await.is_ok());
        // A name is judged by what it resolves to: localhost is loopback.
        let named = "http://localhost:4000/token";
        assert!(allowed_url(named, false).await.is_err());
        assert!(allowed_url(named, true).await.is_ok());
    }
}
