//! `.local` host names given with `--device`, resolved by the harness's own
//! mDNS when the system resolver cannot (Linux without nss-mdns, a
//! container): the system is asked first, then an mdns-sd hostname query
//! for the A/AAAA record. The address found is handed to the HTTP client
//! (`SessionConfig::resolved`), so URLs, labels and reports keep the name.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mdns_sd::{DaemonStatus, HostnameResolutionEvent, ScopedIp, ServiceDaemon};

/// How one name was resolved, for `-v` and for the error when it was not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub host: String,
    /// The system resolver's error (it could not resolve the name).
    pub system_error: String,
    /// Addresses found over mDNS (IPv4 first), or why none were.
    pub mdns: Result<Vec<IpAddr>, String>,
    pub took: Duration,
}

impl Resolution {
    /// The line `-v` prints.
    pub fn describe(&self) -> String {
        let how = match &self.mdns {
            Ok(a) => format!(
                "over mDNS: {} in {:.2} s",
                a.iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                self.took.as_secs_f64()
            ),
            Err(e) => format!("not over mDNS either: {e}"),
        };
        format!(
            "{}: the system resolver could not resolve it ({}); {how}",
            self.host, self.system_error
        )
    }
}

/// Whether `host` is an mDNS name (`NAME.local`, with or without the dot).
pub fn is_local(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h.ends_with(".local") && h.len() > ".local".len() && h.parse::<IpAddr>().is_err()
}

/// Resolve each `.local` host the system resolver cannot; returns what the
/// client must be told and how each was resolved.
pub async fn resolve_all(
    hosts: &[(String, u16)],
    within: Duration,
) -> (Vec<(String, SocketAddr)>, Vec<Resolution>) {
    let mut overrides = Vec::new();
    let mut resolutions = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (host, port) in hosts {
        if !is_local(host) || seen.contains(&host.as_str()) {
            continue;
        }
        seen.push(host);
        let system = tokio::time::timeout(within, tokio::net::lookup_host((host.as_str(), *port)))
            .await
            .map_err(|_| format!("no answer within {:.1} s", within.as_secs_f64()))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map(|addrs| addrs.count());
        let system_error = match system {
            Ok(n) if n > 0 => continue,
            Ok(_) => "no address".to_owned(),
            Err(e) => e,
        };
        let started = Instant::now();
        let shown = crate::wait::begin(format!("{host} over mDNS"), Some(within));
        let mdns = over_mdns(host, within).await;
        drop(shown);
        if let Some(a) = mdns.as_ref().ok().and_then(|a| a.first()) {
            overrides.push((host.clone(), SocketAddr::new(*a, *port)));
        }
        resolutions.push(Resolution {
            host: host.clone(),
            system_error,
            mdns,
            took: started.elapsed(),
        });
    }
    (overrides, resolutions)
}

/// Ask over mDNS for `host`'s addresses; IPv4 first (an http URL cannot
/// carry a link-local IPv6 address's scope).
async fn over_mdns(host: &str, within: Duration) -> Result<Vec<IpAddr>, String> {
    let name = format!("{}.", host.trim_end_matches('.'));
    let daemon = ServiceDaemon::new().map_err(|e| format!("mDNS: {e}"))?;
    let ms = within.as_millis() as u64;
    let answer = match daemon.resolve_hostname(&name, Some(ms)) {
        Ok(rx) => {
            // mdns-sd's channel is blocking; its own timeout ends the search.
            tokio::task::spawn_blocking(move || {
                let deadline = Instant::now() + within + Duration::from_millis(500);
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(HostnameResolutionEvent::AddressesFound(_, found)) => {
                            let mut a: Vec<IpAddr> = found
                                .iter()
                                .filter_map(|s| match s {
                                    ScopedIp::V4(v4) => Some(IpAddr::V4(*v4.addr())),
                                    ScopedIp::V6(v6) => Some(IpAddr::V6(*v6.addr())),
                                    _ => None,
                                })
                                .filter(|ip| !is_scoped_v6(ip))
                                .collect();
                            if a.is_empty() {
                                continue;
                            }
                            a.sort_by_key(|ip| (ip.is_ipv6(), *ip));
                            break Ok(a);
                        }
                        Ok(HostnameResolutionEvent::SearchTimeout(_)) | Err(_) => {
                            break Err(format!("no answer within {:.1} s", within.as_secs_f64()))
                        }
                        Ok(_) => {}
                    }
                }
            })
            .await
            .unwrap_or_else(|e| Err(format!("mDNS: {e}")))
        }
        Err(e) => Err(format!("mDNS: {e}")),
    };
    if let Ok(status) = daemon.shutdown() {
        let _ = tokio::task::spawn_blocking(move || {
            matches!(
                status.recv_timeout(Duration::from_secs(2)),
                Ok(DaemonStatus::Shutdown)
            )
        })
        .await;
    }
    answer
}

fn is_scoped_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_names_are_resolved_over_mdns() {
        assert!(is_local("Vege_A6_20.local"));
        assert!(is_local("vege_a6_20.LOCAL."));
        assert!(!is_local(".local"));
        assert!(!is_local("hub.example.org"));
        assert!(!is_local("127.0.0.1"));
    }
}
