//! Content encodings: which one a client gets, and making it.

use std::collections::HashMap;

use super::cache::CACHE_ENTRY_MAX;

/// Content encodings offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Enc {
    Identity,
    Zstd,
    Br,
    Gzip,
}

impl Enc {
    pub fn token(self) -> &'static str {
        match self {
            Enc::Identity => "identity",
            Enc::Zstd => "zstd",
            Enc::Br => "br",
            Enc::Gzip => "gzip",
        }
    }
}

/// Picks the best encoding the client accepts (zstd, then br, then gzip).
pub fn negotiate(accept: Option<&str>) -> Enc {
    let Some(accept) = accept else { return Enc::Identity };
    let mut ok = HashMap::new();
    for part in accept.split(',') {
        let mut it = part.split(';');
        let name = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        ok.insert(name, q);
    }
    for e in [Enc::Zstd, Enc::Br, Enc::Gzip] {
        if ok.get(e.token()).or(ok.get("*")).is_some_and(|&q| q > 0.0) {
            return e;
        }
    }
    Enc::Identity
}

pub fn compressible(media: &str, size: u64) -> bool {
    let m = media.split(';').next().unwrap_or("").trim();
    (256..=(CACHE_ENTRY_MAX as u64)).contains(&size)
        && (m.starts_with("text/")
            || matches!(
                m,
                "application/javascript"
                    | "application/json"
                    | "application/xml"
                    | "application/rss+xml"
                    | "application/atom+xml"
                    | "image/svg+xml"
                    | "application/wasm"
            ))
}

pub fn compress(data: &[u8], e: Enc) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    match e {
        Enc::Identity => Ok(data.to_vec()),
        Enc::Zstd => zstd::bulk::compress(data, 12),
        Enc::Br => {
            let mut out = Vec::new();
            // A 1 MiB window: objects compressed here are at most 1 MiB.
            let params = brotli::enc::BrotliEncoderParams { quality: 9, lgwin: 20, ..Default::default() };
            brotli::BrotliCompress(&mut &data[..], &mut out, &params)?;
            Ok(out)
        }
        Enc::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            enc.write_all(data)?;
            enc.finish()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_negotiated_by_preference_and_q_values() {
        assert_eq!(negotiate(Some("gzip, deflate, br, zstd")), Enc::Zstd);
        assert_eq!(negotiate(Some("gzip, br")), Enc::Br);
        assert_eq!(negotiate(Some("gzip")), Enc::Gzip);
        assert_eq!(negotiate(Some("zstd;q=0, gzip;q=0.5")), Enc::Gzip);
        assert_eq!(negotiate(Some("identity")), Enc::Identity);
        assert_eq!(negotiate(None), Enc::Identity);
    }
}
