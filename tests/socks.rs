//! A mirror that syncs through a SOCKS5 proxy (Tor's port, for an onion
//! mirror): every upstream connection goes through the proxy, and the
//! upstream's name is sent to the proxy to resolve, never looked up locally.
//! The proxy here is a real SOCKS5 server on 127.0.0.1 (RFC 1928, no
//! authentication) that knows one name the machine's resolver does not.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};

use crate::daemon::{Daemon, config};
use crate::hostile::Upstream;
use crate::support::*;

/// A name only the proxy can resolve (`.invalid` never resolves, RFC 6761).
const HIDDEN: &str = "origin.samizdat-test.invalid";

/// What the proxy was asked: (address type, host, port) per CONNECT.
type Asked = Arc<Mutex<Vec<(u8, String, u16)>>>;

/// A SOCKS5 proxy that resolves [`HIDDEN`] to 127.0.0.1 and relays.
fn socks_proxy() -> (u16, Asked) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked: Asked = Arc::default();
    let log = asked.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                let _ = socks_session(conn, &log);
            });
        }
    });
    (port, asked)
}

fn socks_session(mut c: TcpStream, log: &Asked) -> std::io::Result<()> {
    let mut b = [0u8; 2];
    c.read_exact(&mut b)?; // version 5, number of methods
    let mut methods = vec![0u8; b[1] as usize];
    c.read_exact(&mut methods)?;
    c.write_all(&[5, 0])?; // no authentication
    let mut req = [0u8; 4];
    c.read_exact(&mut req)?; // 5, CONNECT, 0, address type
    let host = match req[3] {
        3 => {
            let mut n = [0u8];
            c.read_exact(&mut n)?;
            let mut name = vec![0u8; n[0] as usize];
            c.read_exact(&mut name)?;
            String::from_utf8_lossy(&name).into_owned()
        }
        1 => {
            let mut a = [0u8; 4];
            c.read_exact(&mut a)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        _ => return Ok(()),
    };
    let mut p = [0u8; 2];
    c.read_exact(&mut p)?;
    let port = u16::from_be_bytes(p);
    log.lock().unwrap().push((req[3], host.clone(), port));
    let target = if host == HIDDEN { "127.0.0.1".to_string() } else { host };
    let Ok(up) = TcpStream::connect((target.as_str(), port)) else {
        return c.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]); // host unreachable
    };
    c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])?;
    let (mut c2, mut up2) = (c.try_clone()?, up.try_clone()?);
    let mut up = up;
    let t = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut up);
        let _ = up.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut up2, &mut c);
    let _ = c.shutdown(Shutdown::Write);
    let _ = t.join();
    Ok(())
}

#[test]
fn a_mirror_with_socks_proxy_syncs_only_through_it_and_lets_it_resolve_names() {
    assert!(
        (HIDDEN, 80).to_socket_addrs().is_err(),
        "{HIDDEN} resolves on this machine, so the test could not tell who resolved it"
    );
    let c = Cli::new();
    c.bundle().ok();
    // An https upstream: TLS runs end to end over the proxied stream.
    let up = Upstream::start_tls(&c.path("repo"), &[HIDDEN]);
    let up_port: u16 = up.url().trim_end_matches('/').rsplit(':').next().unwrap().parse().unwrap();
    let (proxy, asked) = socks_proxy();
    let url = format!("https://{HIDDEN}:{up_port}/");
    let d = Daemon::start(
        &c.path("m.toml"),
        &config(&c.path("m"), &c.pubkey(), &[url], &format!("socks_proxy = \"127.0.0.1:{proxy}\"")),
    );
    d.wait_seq(1);
    assert_eq!(d.get("/").body, b"<h1>hello</h1>");
    let asked = asked.lock().unwrap().clone();
    assert!(!asked.is_empty(), "the mirror never used the proxy");
    for (atyp, host, port) in &asked {
        assert_eq!((*atyp, host.as_str(), *port), (3, HIDDEN, up_port), "a CONNECT not by name: {asked:?}");
    }
    let gets = up.gets();
    assert!(gets.contains_key("head"), "the upstream was not reached: {gets:?}");
}

#[test]
fn a_dead_socks_proxy_is_named_and_never_bypassed() {
    let c = Cli::new();
    c.bundle().ok();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let d = Daemon::start(
        &c.path("m.toml"),
        &config(&c.path("m"), &c.pubkey(), &[c.s("repo")], &format!("socks_proxy = \"127.0.0.1:{dead}\"")),
    );
    // A local folder upstream needs no proxy: the mirror syncs and serves.
    d.wait_seq(1);
    // An http upstream through the dead proxy fails, naming the proxy.
    let up = Upstream::start(&c.path("repo"));
    let d2 = Daemon::start(
        &c.path("m2.toml"),
        &config(&c.path("m2"), &c.pubkey(), &[up.url()], &format!("socks_proxy = \"127.0.0.1:{dead}\"")),
    );
    d2.wait_log(&format!("SOCKS proxy 127.0.0.1:{dead}"));
    assert!(up.gets().is_empty(), "the mirror went around the proxy: {:?}", up.gets());
}
