//! A TLS connection to etcd's client URL for `doctor`'s plain HTTP reads
//! (`/version`), trusting the CA and presenting the client certificate of
//! `[cluster]` — the files the plugin's own etcd client uses.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::IpAddr;
use std::sync::Arc;
use switchyard_backends::vxlan::TlsFiles;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

/// TLS over `tcp` to etcd at `ip`, its certificate checked against
/// `[cluster] ca_file`.
pub async fn connect(
    tcp: TcpStream,
    ip: IpAddr,
    files: &TlsFiles,
) -> Result<TlsStream<TcpStream>, String> {
    let ca = files
        .ca
        .as_deref()
        .ok_or("https:// needs [cluster] ca_file (the CA that signed etcd's certificate)")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        let cert = cert.map_err(|e| format!("[cluster] ca_file: not a PEM certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("[cluster] ca_file: {e}"))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = match &files.identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("[cluster] cert_file: not a PEM certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| format!("[cluster] key_file: not a PEM private key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("[cluster] cert_file/key_file: {e}"))?
        }
    };
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| {
            format!("TLS with etcd failed ({e}); check [cluster] ca_file, cert_file and key_file")
        })
}
