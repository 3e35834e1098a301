//! What this build of pktstream carries: its version, and the versions and features of the C
//! libraries linked into it (librdkafka, libpcap). `pktstream --version` prints it, so a bug
//! report says which librdkafka and which TLS/SASL/compression support a wheel was built with.

/// The versions and features of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// pktstream's own version (Cargo.toml, the one version number of the project).
    pub version: &'static str,
    /// librdkafka's version string, e.g. `2.12.1`.
    pub librdkafka_version: String,
    /// librdkafka's `builtin.features`: codecs, `ssl`, `sasl_scram`, `zstd`, ...
    pub librdkafka_features: Vec<String>,
    /// libpcap's `pcap_lib_version()`, when live capture is built in.
    pub libpcap_version: Option<String>,
}

/// Reads the build's versions and features from the linked libraries.
pub fn build_info() -> BuildInfo {
    let (_, librdkafka_version) = rdkafka::util::get_rdkafka_version();
    let librdkafka_features = rdkafka::ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .map(|s| s.split(',').filter(|f| !f.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        librdkafka_version,
        librdkafka_features,
        libpcap_version: libpcap_version(),
    }
}

#[cfg(feature = "live")]
fn libpcap_version() -> Option<String> {
    // The pcap crate links libpcap but does not wrap this one function.
    extern "C" {
        fn pcap_lib_version() -> *const std::os::raw::c_char;
    }
    // SAFETY: pcap_lib_version takes no arguments and returns a pointer to a static,
    // NUL-terminated string owned by libpcap (or null, handled below).
    let ptr = unsafe { pcap_lib_version() };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated and static (above).
    Some(unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

#[cfg(not(feature = "live"))]
fn libpcap_version() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_linked_libraries() {
        let info = build_info();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.librdkafka_version.starts_with("2."), "{}", info.librdkafka_version);
        for feature in ["ssl", "sasl_scram", "zstd", "gzip", "snappy", "lz4"] {
            assert!(info.librdkafka_features.iter().any(|f| f == feature), "{feature}: {info:?}");
        }
        #[cfg(feature = "live")]
        assert!(info.libpcap_version.as_deref().is_some_and(|v| v.contains("libpcap version 1.")), "{info:?}");
    }
}
