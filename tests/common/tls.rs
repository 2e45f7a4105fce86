//! A TLS front before the simulator: terminates TLS with the test certificate in
//! `fixtures/tls/` (self-signed for 127.0.0.1) and passes the bytes on, so the agent meets an
//! Exchange whose certificate no public CA signed.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The certificate to trust for the front (`exchange.extra_root_certs`).
pub fn certificate() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/localhost.crt")
}

/// Starts the front before `ews_url`; returns the same URL over https.
pub async fn front(ews_url: &str) -> String {
    let upstream = url::Url::parse(ews_url).unwrap();
    let target = format!(
        "{}:{}",
        upstream.host_str().unwrap(),
        upstream.port().unwrap()
    );
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls/localhost.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from_pem_file(certificate()).unwrap()],
        PrivateKeyDer::from_pem_file(key).unwrap(),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                // A refused handshake is the client's verdict on the certificate: nothing to do.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    let mut url = upstream;
    url.set_scheme("https").unwrap();
    url.set_port(Some(port)).unwrap();
    url.to_string()
}
