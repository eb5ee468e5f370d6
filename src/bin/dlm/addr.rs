//! Members given as `ID=HOST:PORT`. A client command resolves them here, when it starts; a
//! server hands them to its links, which look them up at every dial. A name that resolves to
//! several addresses uses the first.

use std::net::SocketAddr;

/// A member as given on the command line or in a config file (`"ID=HOST:PORT"`), before
/// resolution.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Member {
    pub id: u64,
    pub host_port: String,
}

impl TryFrom<String> for Member {
    type Error = String;

    fn try_from(s: String) -> Result<Member, String> {
        parse_member(&s)
    }
}

/// Parses `ID=HOST:PORT`.
pub fn parse_member(s: &str) -> Result<Member, String> {
    let (id, host_port) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=HOST:PORT, got {s:?}"))?;
    let id = id
        .trim()
        .parse()
        .map_err(|e| format!("bad node id {id:?}: {e}"))?;
    let host_port = host_port.trim();
    if host_port
        .rsplit_once(':')
        .is_none_or(|(host, _)| host.is_empty())
    {
        return Err(format!(
            "expected HOST:PORT after the id, got {host_port:?}"
        ));
    }
    Ok(Member {
        id,
        host_port: host_port.to_string(),
    })
}

/// The host of `HOST:PORT` (without the brackets of an IPv6 address).
pub fn host_of(host_port: &str) -> &str {
    let host = host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A list of members (one value, so that clap and the environment take it whole).
#[derive(Clone, Debug)]
pub struct Members(pub Vec<Member>);

/// Parses `ID=HOST:PORT,ID=HOST:PORT,...`.
pub fn parse_members(s: &str) -> Result<Members, String> {
    let members: Vec<_> = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_member)
        .collect::<Result<_, _>>()?;
    if members.is_empty() {
        return Err("no members given".into());
    }
    Ok(Members(members))
}

/// Resolves `host_port` to its first address.
pub async fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    let mut found = tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?;
    found
        .next()
        .ok_or_else(|| format!("{host_port} resolves to no address"))
}

/// Resolves every member (client commands).
pub async fn resolve_all(members: &[Member]) -> Result<Vec<(u64, SocketAddr)>, String> {
    let mut out = Vec::with_capacity(members.len());
    for m in members {
        out.push((m.id, resolve(&m.host_port).await?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_take_host_names_and_ports() {
        let m = parse_members("1=localhost:7001, 2=10.0.0.2:7001,3=[::1]:7003").unwrap();
        assert_eq!(m.0.len(), 3);
        assert_eq!(m.0[0].host_port, "localhost:7001");
        assert_eq!(m.0[2].id, 3);
        for bad in ["", "1", "x=host:1", "1=host", "1=:7001"] {
            assert!(parse_members(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(host_of(&m.0[0].host_port), "localhost");
        assert_eq!(host_of(&m.0[1].host_port), "10.0.0.2");
        assert_eq!(host_of(&m.0[2].host_port), "::1");
    }

    #[tokio::test]
    async fn localhost_resolves() {
        let addr = resolve("localhost:7001").await.unwrap();
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), 7001);
    }
}
