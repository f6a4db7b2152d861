//! `postern:mta/dns`: DNS through hickory-resolver, asynchronously.
//!
//! The resolver's name servers come from `dns_nameservers` (so tests can run a
//! real DNS server on loopback) or from /etc/resolv.conf. Names are looked up
//! as fully-qualified: no search domains are appended to a DNSBL query.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};

use super::super::bindings::postern::mta::dns::{DnsError, Host};
use super::super::state::HostState;
use crate::config::Capability;

/// Per-query time limit (the plugin's own deadline usually ends it first).
const DNS_TIMEOUT: Duration = Duration::from_secs(5);

/// The resolver behind the `dns` capability.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dns")
    }
}

/// A lookup's failure, as the WIT says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// NXDOMAIN or no record of the type.
    NotFound,
    /// Anything else (timeout, SERVFAIL, network).
    Temporary(String),
}

fn classify(e: &ResolveError) -> LookupError {
    if e.is_nx_domain() || e.is_no_records_found() {
        LookupError::NotFound
    } else {
        LookupError::Temporary(e.to_string())
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

impl Dns {
    /// A resolver using `servers`, or the system's when empty.
    pub fn new(servers: &[SocketAddr]) -> Result<Dns, String> {
        let mut opts = ResolverOpts::default();
        opts.timeout = DNS_TIMEOUT;
        opts.attempts = 1;
        let resolver = if servers.is_empty() {
            let mut b = TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?;
            *b.options_mut() = opts;
            b.build()
        } else {
            let group: Vec<NameServerConfig> = servers
                .iter()
                .flat_map(|a| {
                    [
                        NameServerConfig::new(*a, Protocol::Udp),
                        NameServerConfig::new(*a, Protocol::Tcp),
                    ]
                })
                .collect();
            let config =
                ResolverConfig::from_parts(None, vec![], NameServerConfigGroup::from(group));
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(opts)
                .build()
        };
        Ok(Dns { resolver })
    }

    /// A records.
    pub async fn a(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let l = self
            .resolver
            .ipv4_lookup(fqdn(name))
            .await
            .map_err(|e| classify(&e))?;
        Ok(l.iter().map(|a| a.0.to_string()).collect())
    }

    /// AAAA records.
    pub async fn aaaa(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let l = self
            .resolver
            .ipv6_lookup(fqdn(name))
            .await
            .map_err(|e| classify(&e))?;
        Ok(l.iter().map(|a| a.0.to_string()).collect())
    }

    /// TXT records, each record's strings joined.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let l = self
            .resolver
            .txt_lookup(fqdn(name))
            .await
            .map_err(|e| classify(&e))?;
        Ok(l.iter()
            .map(|t| {
                t.txt_data()
                    .iter()
                    .map(|d| String::from_utf8_lossy(d).into_owned())
                    .collect::<String>()
            })
            .collect())
    }

    /// MX records.
    pub async fn mx(&self, name: &str) -> Result<Vec<(u16, String)>, LookupError> {
        let l = self
            .resolver
            .mx_lookup(fqdn(name))
            .await
            .map_err(|e| classify(&e))?;
        Ok(l.iter()
            .map(|m| (m.preference(), m.exchange().to_utf8()))
            .collect())
    }

    /// PTR records of an address.
    pub async fn ptr(&self, ip: &str) -> Result<Vec<String>, LookupError> {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| LookupError::Temporary(format!("`{ip}` is not an IP address")))?;
        let l = self
            .resolver
            .reverse_lookup(ip)
            .await
            .map_err(|e| classify(&e))?;
        Ok(l.iter().map(|p| p.0.to_utf8()).collect())
    }
}

fn wit(e: LookupError) -> DnsError {
    match e {
        LookupError::NotFound => DnsError::NotFound,
        LookupError::Temporary(s) => DnsError::Temporary(s),
    }
}

impl HostState {
    fn dns(&self) -> wasmtime::Result<Dns> {
        self.require(Capability::Dns)?;
        self.guest()
            .dns
            .clone()
            .ok_or_else(|| wasmtime::format_err!("dns resolver unavailable"))
    }
}

impl Host for HostState {
    async fn lookup_a(&mut self, name: String) -> wasmtime::Result<Result<Vec<String>, DnsError>> {
        Ok(self.dns()?.a(&name).await.map_err(wit))
    }

    async fn lookup_aaaa(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Vec<String>, DnsError>> {
        Ok(self.dns()?.aaaa(&name).await.map_err(wit))
    }

    async fn lookup_txt(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Vec<String>, DnsError>> {
        Ok(self.dns()?.txt(&name).await.map_err(wit))
    }

    async fn lookup_mx(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Vec<(u16, String)>, DnsError>> {
        Ok(self.dns()?.mx(&name).await.map_err(wit))
    }

    async fn lookup_ptr(&mut self, ip: String) -> wasmtime::Result<Result<Vec<String>, DnsError>> {
        Ok(self.dns()?.ptr(&ip).await.map_err(wit))
    }
}
