//! The subject of an X.509 certificate (DER) as Kafka prints it: RFC 2253, the last RDN of the
//! DER sequence first (`CN=bob,OU=eng`), as Java's `X500Principal.getName()`. Parses untrusted
//! bytes: every length is checked, nothing panics.
#![deny(clippy::indexing_slicing)]

use std::fmt::Write as _;

/// Why a certificate's subject could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NameError {
    #[error("certificate is not valid DER at byte {at}: {what}")]
    Der { at: usize, what: &'static str },
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xa0;

/// One DER element: its tag and contents, and where the contents start in the input.
struct Tlv<'a> {
    tag: u8,
    contents: &'a [u8],
    at: usize,
}

/// Reads elements one after another out of `bytes` (which start at offset `base`).
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], base: usize) -> Self {
        Reader {
            bytes,
            pos: 0,
            base,
        }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn error(&self, what: &'static str) -> NameError {
        NameError::Der {
            at: self.base + self.pos,
            what,
        }
    }

    fn byte(&mut self) -> Result<u8, NameError> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or_else(|| self.error("truncated"))?;
        self.pos += 1;
        Ok(byte)
    }

    fn next(&mut self) -> Result<Tlv<'a>, NameError> {
        let tag = self.byte()?;
        if tag & 0x1f == 0x1f {
            return Err(self.error("multi-byte tags are not used in names"));
        }
        let first = self.byte()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(self.error("unsupported length"));
            }
            let mut len = 0usize;
            for _ in 0..count {
                len = (len << 8) | usize::from(self.byte()?);
            }
            len
        };
        let at = self.pos;
        let end = at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("length beyond the data"))?;
        let contents = self
            .bytes
            .get(at..end)
            .ok_or_else(|| self.error("truncated"))?;
        self.pos = end;
        Ok(Tlv {
            tag,
            contents,
            at: self.base + at,
        })
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, NameError> {
        let tlv = self.next()?;
        if tlv.tag != tag {
            return Err(NameError::Der { at: tlv.at, what });
        }
        Ok(tlv)
    }
}

impl Tlv<'_> {
    fn reader(&self) -> Reader<'_> {
        Reader::new(self.contents, self.at)
    }
}

/// The subject DN of a DER certificate in RFC 2253 form.
pub(crate) fn subject_dn(certificate: &[u8]) -> Result<String, NameError> {
    let mut outer = Reader::new(certificate, 0);
    let cert = outer.expect(SEQUENCE, "expected the certificate sequence")?;
    let mut cert_reader = cert.reader();
    let tbs = cert_reader.expect(SEQUENCE, "expected tbsCertificate")?;
    let mut fields = tbs.reader();
    let mut field = fields.next()?;
    if field.tag == CONTEXT_0 {
        field = fields.next()?; // version, then the serial number
    }
    let _serial = field;
    let _signature = fields.expect(SEQUENCE, "expected the signature algorithm")?;
    let _issuer = fields.expect(SEQUENCE, "expected the issuer")?;
    let _validity = fields.expect(SEQUENCE, "expected the validity")?;
    let subject = fields.expect(SEQUENCE, "expected the subject")?;
    name_rfc2253(&subject)
}

/// A Name (SEQUENCE OF RDN) printed last RDN first, RDNs joined by `,`, the attributes of a
/// multi-valued RDN by `+`.
fn name_rfc2253(name: &Tlv<'_>) -> Result<String, NameError> {
    let mut rdns = Vec::new();
    let mut reader = name.reader();
    while !reader.is_empty() {
        let rdn = reader.expect(SET, "expected a relative distinguished name")?;
        let mut attributes = Vec::new();
        let mut rdn_reader = rdn.reader();
        while !rdn_reader.is_empty() {
            let pair = rdn_reader.expect(SEQUENCE, "expected an attribute")?;
            let mut pair_reader = pair.reader();
            let oid = pair_reader.expect(OID, "expected an attribute type")?;
            let value = pair_reader.next()?;
            attributes.push(attribute(&oid, &value));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// `TYPE=value`: the RFC 2253 keyword, or the dotted OID with the value as `#` + hex DER.
fn attribute(oid: &Tlv<'_>, value: &Tlv<'_>) -> String {
    let keyword = match oid.contents {
        [0x55, 0x04, 0x03] => Some("CN"),
        [0x55, 0x04, 0x07] => Some("L"),
        [0x55, 0x04, 0x08] => Some("ST"),
        [0x55, 0x04, 0x0a] => Some("O"),
        [0x55, 0x04, 0x0b] => Some("OU"),
        [0x55, 0x04, 0x06] => Some("C"),
        [0x55, 0x04, 0x09] => Some("STREET"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => Some("DC"),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => Some("UID"),
        _ => None,
    };
    let text = string_value(value);
    match (keyword, text) {
        (Some(keyword), Some(text)) => format!("{keyword}={}", escape(&text)),
        (keyword, _) => {
            let name = keyword.map_or_else(|| dotted(oid.contents), str::to_owned);
            let mut hex = format!("{name}=#{:02x}", value.tag);
            let len = value.contents.len();
            if len < 0x80 {
                let _ = write!(hex, "{len:02x}");
            } else {
                let bytes = len.to_be_bytes();
                let skip = bytes.iter().take_while(|b| **b == 0).count();
                let significant = bytes.get(skip..).unwrap_or_default();
                let _ = write!(hex, "{:02x}", 0x80 | significant.len());
                for byte in significant {
                    let _ = write!(hex, "{byte:02x}");
                }
            }
            for byte in value.contents {
                let _ = write!(hex, "{byte:02x}");
            }
            hex
        }
    }
}

/// The value of a directory string (UTF8, Printable, IA5, Teletex as Latin-1, BMP as UCS-2).
fn string_value(value: &Tlv<'_>) -> Option<String> {
    match value.tag {
        0x0c | 0x13 | 0x16 => std::str::from_utf8(value.contents).ok().map(str::to_owned),
        0x14 => Some(value.contents.iter().map(|b| char::from(*b)).collect()),
        0x1e => {
            let units: Vec<u16> = value
                .contents
                .chunks_exact(2)
                .map(|pair| <[u8; 2]>::try_from(pair).ok().map(u16::from_be_bytes))
                .collect::<Option<_>>()?;
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 escaping: `,+"\<>;` anywhere, `#` or a space first, a space last.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (idx, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (idx == 0 && matches!(c, '#' | ' '))
            || (idx == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An OID's dotted form (`2.5.4.45`).
fn dotted(bytes: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for byte in bytes {
        value = value.saturating_mul(128) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    let mut text = String::new();
    if let Some(first) = arcs.first() {
        let (a, b) = match first {
            0..=39 => (0, *first),
            40..=79 => (1, first - 40),
            _ => (2, first - 80),
        };
        let _ = write!(text, "{a}.{b}");
    }
    for arc in arcs.iter().skip(1) {
        let _ = write!(text, ".{arc}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(subject: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_is_printed_last_rdn_first() {
        let der = certificate(&[
            (rcgen::DnType::CountryName, "US"),
            (rcgen::DnType::OrganizationName, "Acme, Inc."),
            (rcgen::DnType::OrganizationalUnitName, "eng"),
            (rcgen::DnType::CommonName, "bob"),
        ]);
        assert_eq!(
            subject_dn(&der).unwrap(),
            "CN=bob,OU=eng,O=Acme\\, Inc.,C=US"
        );
    }

    #[test]
    fn unknown_attribute_types_print_as_oid_and_hex() {
        let der = certificate(&[
            (rcgen::DnType::CustomDnType(vec![2, 5, 4, 45]), "x"),
            (rcgen::DnType::CommonName, " #a+b "),
        ]);
        assert_eq!(
            subject_dn(&der).unwrap(),
            "CN=\\ #a\\+b\\ ,2.5.4.45=#0c0178"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let der = certificate(&[(rcgen::DnType::CommonName, "bob")]);
        for cut in 0..der.len() {
            let _ = subject_dn(der.get(..cut).unwrap());
        }
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x80],
        ] {
            assert!(subject_dn(bad).is_err(), "{bad:?}");
        }
    }
}
