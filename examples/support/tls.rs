//! TLS for a local cluster: certificates made on the spot with rcgen (a CA, one certificate
//! per node, one for the clients, each naming 127.0.0.1 and localhost) in a directory that
//! the spawned nodes read (see [`super::cluster::ProcessCluster::use_tls`]).

use std::path::Path;

#[path = "../../dlm-transport-tcp/tests/common/pki.rs"]
mod pki;

const NAMES: &[&str] = &["127.0.0.1", "localhost"];

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
}

/// Writes `ca.pem`, `node-ID.pem` and `node-ID.key` for each of `ids`, and returns a client's
/// TLS with a certificate of its own (mutual TLS).
pub fn make_certificates(dir: &Path, ids: &[u64]) -> Result<dlm::ClientTls, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let ca = pki::Ca::new("dlm local cluster CA");
    write(dir, "ca.pem", &ca.pem)?;
    for id in ids {
        let node = ca.issue(NAMES);
        write(dir, &format!("node-{id}.pem"), &node.cert_pem)?;
        write(dir, &format!("node-{id}.key"), &node.key_pem)?;
    }
    let client = ca.issue(&["dlm local client"]);
    let roots = dlm::TlsRoots::from_pem(ca.pem.as_bytes()).map_err(|e| e.to_string())?;
    let identity =
        dlm::TlsIdentity::from_pem(client.cert_pem.as_bytes(), client.key_pem.as_bytes())
            .map_err(|e| e.to_string())?;
    dlm::ClientTls::with_identity(roots, identity).map_err(|e| e.to_string())
}

/// Node `id`'s mutual TLS, from the files [`make_certificates`] wrote in `dir`.
pub fn node_tls(dir: &Path, id: u64) -> Result<dlm::NodeTls, String> {
    let identity = dlm::TlsIdentity::from_pem_files(
        &dir.join(format!("node-{id}.pem")),
        &dir.join(format!("node-{id}.key")),
    )
    .map_err(|e| e.to_string())?;
    let roots = dlm::TlsRoots::from_pem_file(&dir.join("ca.pem")).map_err(|e| e.to_string())?;
    dlm::NodeTls::mutual(identity, roots, dlm::ClientCerts::Required).map_err(|e| e.to_string())
}
