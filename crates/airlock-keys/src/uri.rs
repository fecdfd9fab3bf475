//! RFC 7512 `pkcs11:` URIs, as far as naming one signing key goes.

use crate::KeyError;

pub const SCHEME: &str = "pkcs11:";

/// The attributes of a `pkcs11:` URI airlock uses. Path attributes pick the token and
/// the key; query attributes say how to reach it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The text as given (with `pin-value` hidden when shown).
    text: String,
    pub token: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub slot_id: Option<u64>,
    pub object: Option<String>,
    pub id: Option<Vec<u8>>,
    pub object_type: Option<String>,
    pub module_path: Option<String>,
    pub pin_source: Option<String>,
    pub pin_value: Option<String>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Uri({self})")
    }
}

/// Shown without the PIN: `pin-value=` becomes `pin-value=***`.
impl std::fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&mask_pin(&self.text))
    }
}

/// `text` with the value of every `pin-value=` attribute (in the query, in the path
/// by mistake, in any letter case) replaced by `***`: how any text that may hold a
/// PIN is shown.
pub(crate) fn mask_pin(text: &str) -> String {
    const NAME: &str = "pin-value=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_ignore_case(rest, NAME) {
        let value_at = at + NAME.len();
        out.push_str(&rest[..value_at]);
        out.push_str("***");
        let tail = &rest[value_at..];
        let end = tail.find(['&', ';', '?', '#']).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Where `needle` (ASCII) first occurs in `hay`, whatever the letter case.
fn find_ignore_case(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (0..h.len().checked_sub(n.len())? + 1).find(|&i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Whether `text` is a `pkcs11:` URI by its scheme (RFC 3986: in any letter case).
pub(crate) fn has_scheme(text: &str) -> bool {
    text.get(..SCHEME.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
}

impl Pkcs11Uri {
    /// The URI with no `pin-value=` at all: what can be shown as the `--key` to use
    /// (the PIN then comes from `pin-source=` or the terminal).
    pub fn without_pin(&self) -> String {
        let Some((path, query)) = self.text.split_once('?') else {
            return self.text.clone();
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|a| !a.starts_with("pin-value="))
            .collect();
        if kept.iter().all(|a| a.is_empty()) {
            return path.to_string();
        }
        format!("{path}?{}", kept.join("&"))
    }
}

fn bad(text: &str, why: impl Into<String>) -> KeyError {
    let shown = Pkcs11Uri {
        text: text.into(),
        ..Default::default()
    };
    KeyError::Uri {
        uri: shown.to_string(),
        why: why.into(),
    }
}

/// RFC 3986 percent-decoding (RFC 7512 §2.3: any attribute value may be encoded).
fn pct_decode(text: &str, value: &str) -> Result<Vec<u8>, KeyError> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(text, format!("bad percent-encoding in {value:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn pct_string(text: &str, value: &str) -> Result<String, KeyError> {
    String::from_utf8(pct_decode(text, value)?)
        .map_err(|_| bad(text, format!("{value:?} is not UTF-8 once decoded")))
}

impl Pkcs11Uri {
    pub fn parse(text: &str) -> Result<Pkcs11Uri, KeyError> {
        if !has_scheme(text) {
            return Err(bad(text, "it must start with pkcs11:"));
        }
        let rest = &text[SCHEME.len()..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Pkcs11Uri {
            text: text.into(),
            ..Default::default()
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            uri.path_attr(text, attr)?;
        }
        for attr in query.split('&').filter(|a| !a.is_empty()) {
            uri.query_attr(text, attr)?;
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err(bad(
                text,
                "it names no key: give object= (the key's label) or id=",
            ));
        }
        if uri.pin_source.is_some() && uri.pin_value.is_some() {
            return Err(bad(text, "give pin-source= or pin-value=, not both"));
        }
        Ok(uri)
    }

    fn path_attr(&mut self, text: &str, attr: &str) -> Result<(), KeyError> {
        let (name, value) = attr
            .split_once('=')
            .ok_or_else(|| bad(text, format!("attribute {attr:?} has no '='")))?;
        let slot = match name {
            "token" => &mut self.token,
            "manufacturer" => &mut self.manufacturer,
            "model" => &mut self.model,
            "serial" => &mut self.serial,
            "object" => &mut self.object,
            "type" => &mut self.object_type,
            "id" => {
                return set_once(text, name, &mut self.id, pct_decode(text, value)?);
            }
            "slot-id" => {
                let n = pct_string(text, value)?
                    .parse::<u64>()
                    .map_err(|_| bad(text, format!("slot-id={value:?} is not a number")))?;
                return set_once(text, name, &mut self.slot_id, n);
            }
            // Library attributes only narrow which module; airlock loads one module.
            "library-manufacturer"
            | "library-description"
            | "library-version"
            | "slot-manufacturer"
            | "slot-description" => return Ok(()),
            other => {
                return Err(bad(
                    text,
                    format!("unknown path attribute {other:?} (RFC 7512 §2.3)"),
                ))
            }
        };
        let value = pct_string(text, value)?;
        set_once(text, name, slot, value)?;
        if name == "type" && !matches!(self.object_type.as_deref(), Some("private")) {
            return Err(bad(
                text,
                "type= must be private: a signing key is a private key",
            ));
        }
        Ok(())
    }

    fn query_attr(&mut self, text: &str, attr: &str) -> Result<(), KeyError> {
        let (name, value) = attr
            .split_once('=')
            .ok_or_else(|| bad(text, format!("query attribute {attr:?} has no '='")))?;
        let value = pct_string(text, value)?;
        match name {
            "module-path" => set_once(text, name, &mut self.module_path, value),
            "pin-source" => set_once(text, name, &mut self.pin_source, value),
            "pin-value" => set_once(text, name, &mut self.pin_value, value),
            // A module by name would need a search path of its own; refuse, name the fix.
            "module-name" => Err(bad(
                text,
                "module-name= is not supported: give module-path=",
            )),
            other => Err(bad(text, format!("unknown query attribute {other:?}"))),
        }
    }

    /// The file `pin-source=` names (`file:PATH`, `file://PATH` or a plain path).
    pub fn pin_file(&self) -> Result<Option<std::path::PathBuf>, KeyError> {
        let Some(src) = &self.pin_source else {
            return Ok(None);
        };
        let path = src
            .strip_prefix("file://")
            .or_else(|| src.strip_prefix("file:"))
            .unwrap_or(src);
        if path.starts_with('|') || path.is_empty() {
            return Err(bad(&self.text, "pin-source= must name a file (file:PATH)"));
        }
        Ok(Some(path.into()))
    }

    /// How the token and key are named, for messages.
    pub fn key_name(&self) -> String {
        let mut parts = vec![];
        if let Some(o) = &self.object {
            parts.push(format!("object={o}"));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02x}")).collect();
            parts.push(format!("id={hex}"));
        }
        parts.join(";")
    }
}

fn set_once<T>(text: &str, name: &str, slot: &mut Option<T>, value: T) -> Result<(), KeyError> {
    if slot.is_some() {
        return Err(bad(text, format!("{name}= appears twice")));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7512_attributes_are_read_and_the_pin_is_never_shown() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=Release%20HSM;object=rm;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("Release HSM"));
        assert_eq!(u.object.as_deref(), Some("rm"));
        assert_eq!(u.id.as_deref(), Some(&[1u8, 2][..]));
        assert_eq!(u.pin_value.as_deref(), Some("1234"));
        assert!(!u.to_string().contains("1234"), "{u}");
        assert!(!format!("{u:?}").contains("1234"));
        assert_eq!(
            u.without_pin(),
            "pkcs11:token=Release%20HSM;object=rm;id=%01%02;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so"
        );
    }

    #[test]
    fn every_pin_value_is_masked_wherever_it_stands() {
        for (given, shown) in [
            (
                "pkcs11:object=a?pin-value=1234",
                "pkcs11:object=a?pin-value=***",
            ),
            (
                "pkcs11:object=a?pin-value=1234&module-path=/m.so",
                "pkcs11:object=a?pin-value=***&module-path=/m.so",
            ),
            (
                "pkcs11:object=a;pin-value=1234;id=%01",
                "pkcs11:object=a;pin-value=***;id=%01",
            ),
            (
                "PKCS11:object=a?PIN-VALUE=1234",
                "PKCS11:object=a?PIN-VALUE=***",
            ),
            (
                "pkcs11:object=a?pin-value=1&pin-value=2",
                "pkcs11:object=a?pin-value=***&pin-value=***",
            ),
            (
                "pkcs11:object=a?pin-value=",
                "pkcs11:object=a?pin-value=***",
            ),
            ("keys/rm.key", "keys/rm.key"),
            ("pin-valu", "pin-valu"),
        ] {
            assert_eq!(mask_pin(given), shown, "{given}");
        }
        let u = Pkcs11Uri::parse("PKCS11:object=a?pin-value=1234").unwrap();
        assert_eq!(u.object.as_deref(), Some("a"));
        assert!(!u.to_string().contains("1234"));
    }

    #[test]
    fn malformed_uris_are_refused() {
        for bad in [
            "pkcs11:token=a",
            "pkcs11:object=a;object=b",
            "pkcs11:object=a;colour=red",
            "pkcs11:object=a%zz",
            "pkcs11:object=a;type=public",
            "pkcs11:object=a?pin-value=1&pin-source=file:/x",
            "pkcs11:object=a?module-name=softhsm2",
        ] {
            assert!(Pkcs11Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pin_source_names_a_file() {
        let u = Pkcs11Uri::parse("pkcs11:object=a?pin-source=file:/run/pin").unwrap();
        assert_eq!(u.pin_file().unwrap(), Some("/run/pin".into()));
        let u = Pkcs11Uri::parse("pkcs11:object=a?pin-source=file:///run/pin").unwrap();
        assert_eq!(u.pin_file().unwrap(), Some("/run/pin".into()));
        let u = Pkcs11Uri::parse("pkcs11:object=a?pin-source=|cat").unwrap();
        assert!(u.pin_file().is_err());
    }
}
