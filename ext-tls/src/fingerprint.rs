//! A certificate's SHA-256 fingerprint, written as the Proxmox VE GUI and `openssl x509
//! -fingerprint -sha256` show it: 32 upper-case hex bytes separated by colons.

use std::fmt;
use std::str::FromStr;

/// SHA-256 of a certificate's DER encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Text that is not a SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerprintError;

impl fmt::Display for FingerprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "expected a SHA-256 fingerprint: 32 hex bytes separated by colons (AB:CD:...), as \
             `openssl x509 -noout -fingerprint -sha256` prints it, or the 64 hex digits alone",
        )
    }
}

impl std::error::Error for FingerprintError {}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    /// Accepts `AB:CD:...` (either case), `AB-CD-...` (as .NET's `BitConverter` writes it
    /// on Windows) and, for convenience, the same 64 hex digits without separators;
    /// surrounding white space and a leading `sha256:`/`SHA256 Fingerprint=` are ignored.
    fn from_str(text: &str) -> Result<Fingerprint, FingerprintError> {
        let mut text = text.trim();
        for prefix in ["sha256 fingerprint=", "sha256:"] {
            if text.len() > prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix) {
                text = text[prefix.len()..].trim();
            }
        }
        let separator = [':', '-'].into_iter().find(|c| text.contains(*c));
        let digits: Vec<u8> = if let Some(separator) = separator {
            let groups: Vec<&str> = text.split(separator).collect();
            if groups.len() != 32 || groups.iter().any(|g| g.len() != 2) {
                return Err(FingerprintError);
            }
            groups.concat().into_bytes()
        } else {
            text.as_bytes().to_vec()
        };
        if digits.len() != 64 {
            return Err(FingerprintError);
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| FingerprintError)?;
            bytes[i] = u8::from_str_radix(hex, 16).map_err(|_| FingerprintError)?;
        }
        Ok(Fingerprint(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gui_form_and_prints_it_back() {
        let gui = "A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34:45:56:67:78:89:9A:AB:BC:CD:DE:EF:F0";
        let fp: Fingerprint = gui.parse().unwrap();
        assert_eq!(fp.to_string(), gui);
        assert_eq!(
            format!(" {} ", gui.to_lowercase()).parse::<Fingerprint>(),
            Ok(fp)
        );
        assert_eq!(gui.replace(':', "").parse::<Fingerprint>(), Ok(fp));
        assert_eq!(gui.replace(':', "-").parse::<Fingerprint>(), Ok(fp));
        assert_eq!(format!("sha256:{gui}").parse::<Fingerprint>(), Ok(fp));
        assert_eq!(
            format!("SHA256 Fingerprint={gui}").parse::<Fingerprint>(),
            Ok(fp)
        );
    }

    #[test]
    fn refuses_anything_else() {
        for bad in [
            "",
            "A1:B2",
            "A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34:45:56:67:78:89:9A:AB:BC:CD:DE:EF",
            "A1B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34:45:56:67:78:89:9A:AB:BC:CD:DE:EF:F0:11",
            "ZZ:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34:45:56:67:78:89:9A:AB:BC:CD:DE:EF:F0",
            "A1:B2-C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34:45:56:67:78:89:9A:AB:BC:CD:DE:EF:F0",
            // a SHA-1 fingerprint (20 bytes)
            "A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:01:12:23:34",
        ] {
            assert_eq!(bad.parse::<Fingerprint>(), Err(FingerprintError), "{bad}");
        }
    }

    #[test]
    fn is_sha256_of_the_der() {
        // SHA-256("abc")
        assert_eq!(
            Fingerprint::of(b"abc").to_string(),
            "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
        );
    }
}
