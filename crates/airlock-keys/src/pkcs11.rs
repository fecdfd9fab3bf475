//! A signing key on a PKCS#11 token (`cryptoki`): CKM_EDDSA with a CKK_EC_EDWARDS
//! Ed25519 key; the private key never leaves the token.

use crate::{verifying_key, KeyError, PinPrompt, Pkcs11Uri};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use ed25519_dalek::VerifyingKey;
use zeroize::Zeroizing;

/// A static (musl) binary cannot `dlopen` a module: the message says so.
const STATIC: bool = cfg!(all(target_env = "musl", target_feature = "crt-static"));

/// The module the URI names, else `AIRLOCK_PKCS11_MODULE`.
pub const MODULE_ENV: &str = "AIRLOCK_PKCS11_MODULE";

/// The curve's name in CKA_EC_PARAMS, each as tokens write it: RFC 8410's id-Ed25519
/// (1.3.101.112), the older 1.3.6.1.4.1.11591.15.1, and PKCS#11 3.0's PrintableString
/// "edwards25519".
const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const ED25519_OID_OLD: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01,
];
const ED25519_NAME: &[u8] = b"\x13\x0cedwards25519";

pub(crate) struct TokenKey {
    session: Session,
    key: ObjectHandle,
    pub(crate) public: VerifyingKey,
}

fn device(what: &str) -> impl Fn(CkError) -> KeyError + '_ {
    move |e| KeyError::Device {
        what: what.into(),
        why: e.to_string(),
    }
}

fn load_module(uri: &Pkcs11Uri) -> Result<Pkcs11, KeyError> {
    let (module, from_env) = match &uri.module_path {
        Some(m) => (m.clone(), false),
        None => (
            std::env::var(MODULE_ENV).map_err(|_| KeyError::NoModule)?,
            true,
        ),
    };
    let failed = |why: String| KeyError::Module {
        module: module.clone(),
        why,
        from_env,
    };
    let ctx = Pkcs11::new(&module).map_err(|e| {
        failed(if STATIC {
            format!("{e} (this airlock is one static binary, which cannot load a module: build it from source with `cargo build --release` to use a PKCS#11 token, or keep the key in ssh-agent)")
        } else {
            e.to_string()
        })
    })?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| failed(e.to_string()))?;
    Ok(ctx)
}

/// The one initialised token the URI's token attributes match. A slot whose token is
/// not initialised (SoftHSM2's free slot, a blank card) holds no key and is no
/// candidate.
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<(Slot, String), KeyError> {
    let slots = ctx.get_slots_with_token().map_err(device("list tokens"))?;
    let mut found = vec![];
    let mut seen = vec![];
    for slot in slots {
        let info = ctx.get_token_info(slot).map_err(device("read token"))?;
        if !info.token_initialized() {
            continue;
        }
        let label = info.label().trim_end().to_string();
        seen.push(format!("{label:?}"));
        let wanted = |want: &Option<String>, have: &str| {
            want.as_ref()
                .is_none_or(|w| w.trim_end() == have.trim_end())
        };
        if wanted(&uri.token, &label)
            && wanted(&uri.manufacturer, info.manufacturer_id())
            && wanted(&uri.model, info.model())
            && wanted(&uri.serial, info.serial_number())
            && uri.slot_id.is_none_or(|id| id == slot.id())
        {
            found.push((slot, label));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(KeyError::NoToken(no_token(uri.token.as_deref(), &seen))),
        n => Err(KeyError::TokenAmbiguous(format!(
            "{n} tokens match the URI ({}); it must name one",
            found
                .iter()
                .map(|f| format!("{:?}", f.1))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Why no token matched: the one named, or the URI's other attributes; and which
/// initialised tokens the module has.
fn no_token(named: Option<&str>, seen: &[String]) -> String {
    let which = match named {
        Some(t) => format!("token {t:?}: no such token"),
        None => "no such token: none matches the URI".to_string(),
    };
    if seen.is_empty() {
        format!("{which} (the module sees no initialised token)")
    } else {
        format!("{which} (the module's tokens: {})", seen.join(", "))
    }
}

fn pin_for(
    uri: &Pkcs11Uri,
    token: &str,
    prompt: PinPrompt<'_>,
) -> Result<Zeroizing<String>, KeyError> {
    if let Some(v) = &uri.pin_value {
        return Ok(Zeroizing::new(v.clone()));
    }
    if let Some(path) = uri.pin_file()? {
        return read_pin_file(&path);
    }
    prompt(token)
}

/// The first line of a PIN file only its owner can read: one that others can read
/// is refused, as a secret key file is.
fn read_pin_file(path: &std::path::Path) -> Result<Zeroizing<String>, KeyError> {
    let failed = |e: std::io::Error| KeyError::PinFile {
        path: path.display().to_string(),
        why: e.to_string(),
    };
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(path).map_err(failed)?.permissions(),
    );
    if mode & 0o077 != 0 {
        return Err(KeyError::PinFileLoose {
            path: path.display().to_string(),
            mode: mode & 0o777,
        });
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(failed)?);
    Ok(Zeroizing::new(
        text.lines().next().unwrap_or("").to_string(),
    ))
}

/// A PIN the token refused, in plain words, with what its flags say of the tries left.
fn refused_pin(ctx: &Pkcs11, slot: Slot, token: &str, rv: RvError) -> KeyError {
    let mut why = match rv {
        RvError::PinIncorrect => "wrong PIN".to_string(),
        RvError::PinInvalid => "the PIN has characters this token does not take".into(),
        RvError::PinLenRange => "the PIN is too short or too long for this token".into(),
        RvError::PinExpired => "the PIN has expired: set a new one with the token's tool".into(),
        other => format!("{other}"),
    };
    match ctx.get_token_info(slot) {
        Ok(info) if info.user_pin_locked() => {
            return KeyError::PinLocked {
                token: token.into(),
            }
        }
        Ok(info) if info.user_pin_final_try() => {
            why.push_str("; one more wrong PIN locks the token")
        }
        Ok(info) if info.user_pin_count_low() => {
            why.push_str("; the token says few tries are left before it locks")
        }
        _ => {}
    }
    KeyError::Pin {
        token: token.into(),
        why,
    }
}

/// Log in as the user, telling a wrong PIN and a locked token apart.
fn login(
    ctx: &Pkcs11,
    session: &Session,
    slot: Slot,
    token: &str,
    uri: &Pkcs11Uri,
    prompt: PinPrompt<'_>,
) -> Result<(), KeyError> {
    let info = ctx.get_token_info(slot).map_err(device("read token"))?;
    if info.user_pin_locked() {
        return Err(KeyError::PinLocked {
            token: token.into(),
        });
    }
    if !info.login_required() {
        return Ok(());
    }
    let res = if info.protected_authentication_path()
        && uri.pin_value.is_none()
        && uri.pin_source.is_none()
    {
        session.login(UserType::User, None)
    } else {
        let pin = pin_for(uri, token, prompt)?;
        session.login(UserType::User, Some(&AuthPin::from(pin.as_str())))
    };
    match res {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(KeyError::PinLocked {
            token: token.into(),
        }),
        Err(CkError::Pkcs11(
            rv @ (RvError::PinIncorrect
            | RvError::PinInvalid
            | RvError::PinLenRange
            | RvError::PinExpired),
            _,
        )) => Err(refused_pin(ctx, slot, token, rv)),
        Err(e) => Err(device("log in")(e)),
    }
}

/// The objects of `class` the URI's object=/id= name.
fn find(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<Vec<ObjectHandle>, KeyError> {
    let mut template = vec![Attribute::Class(class)];
    if let Some(o) = &uri.object {
        template.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    session
        .find_objects(&template)
        .map_err(device("find the key"))
}

/// What the token says of a private key: its type, its curve, and whether it asks
/// for the PIN before every signature.
struct KeyFacts {
    key_type: Option<KeyType>,
    params: Option<Vec<u8>>,
    always_authenticate: bool,
}

fn key_facts(session: &Session, obj: ObjectHandle) -> Result<KeyFacts, KeyError> {
    let wanted = [
        AttributeType::KeyType,
        AttributeType::EcParams,
        AttributeType::AlwaysAuthenticate,
    ];
    let attrs = session
        .get_attributes(obj, &wanted)
        .map_err(device("read the key"))?;
    let mut facts = KeyFacts {
        key_type: None,
        params: None,
        always_authenticate: false,
    };
    for a in attrs {
        match a {
            Attribute::KeyType(k) => facts.key_type = Some(k),
            Attribute::EcParams(p) => facts.params = Some(p),
            Attribute::AlwaysAuthenticate(b) => facts.always_authenticate = b,
            _ => {}
        }
    }
    Ok(facts)
}

/// Refuse anything but an Ed25519 (CKK_EC_EDWARDS on edwards25519) key, by name.
fn check_ed25519(label: &str, kt: Option<KeyType>, params: Option<&[u8]>) -> Result<(), KeyError> {
    let wrong = |kind: String| KeyError::WrongType {
        key: label.into(),
        kind,
    };
    match kt {
        Some(k) if k == KeyType::EC_EDWARDS => {}
        Some(k) if k == KeyType::RSA => return Err(wrong("an RSA key".into())),
        Some(k) if k == KeyType::EC => {
            return Err(wrong("an ECDSA (Weierstrass curve) key".into()))
        }
        Some(k) => return Err(wrong(format!("a {k} key"))),
        None => return Err(wrong("a key of unknown type".into())),
    }
    match params {
        None => Ok(()),
        Some(p) if p == ED25519_OID || p == ED25519_OID_OLD || p == ED25519_NAME => Ok(()),
        Some(_) => Err(wrong(
            "an Edwards-curve key on another curve (Ed448?)".into(),
        )),
    }
}

/// CKA_EC_POINT of an Ed25519 public key: a DER OCTET STRING of 32 bytes (PKCS#11
/// 3.0), or the 32 bytes bare (some tokens).
fn ec_point_bytes(point: &[u8]) -> &[u8] {
    match point {
        [0x04, 0x20, rest @ ..] if rest.len() == 32 => rest,
        _ => point,
    }
}

fn public_key(session: &Session, uri: &Pkcs11Uri, label: &str) -> Result<VerifyingKey, KeyError> {
    let objs = find(session, uri, ObjectClass::PUBLIC_KEY)?;
    let obj = objs.first().ok_or_else(|| KeyError::NoKey {
        key: label.into(),
        why: "the private key is there but its public key object is not (same label or id)".into(),
    })?;
    let attrs = session
        .get_attributes(*obj, &[AttributeType::EcPoint])
        .map_err(device("read the public key"))?;
    let point = attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p),
            _ => None,
        })
        .ok_or_else(|| KeyError::NoKey {
            key: label.into(),
            why: "its public key object has no CKA_EC_POINT".into(),
        })?;
    verifying_key(label, ec_point_bytes(&point))
}

impl TokenKey {
    pub(crate) fn open(uri: &Pkcs11Uri, prompt: PinPrompt<'_>) -> Result<TokenKey, KeyError> {
        let ctx = load_module(uri)?;
        let (slot, token) = find_slot(&ctx, uri)?;
        let session = ctx
            .open_ro_session(slot)
            .map_err(device("open a session"))?;
        login(&ctx, &session, slot, &token, uri, prompt)?;
        let label = format!("token {token:?} key {}", uri.key_name());
        let keys = find(&session, uri, ObjectClass::PRIVATE_KEY)?;
        let key = match keys.as_slice() {
            [k] => *k,
            [] => {
                return Err(KeyError::NoKey {
                    key: label,
                    why: "no private key with that label/id".into(),
                })
            }
            _ => {
                return Err(KeyError::NoKey {
                    key: label,
                    why: format!("{} private keys match; add id= to pick one", keys.len()),
                })
            }
        };
        let facts = key_facts(&session, key)?;
        check_ed25519(&label, facts.key_type, facts.params.as_deref())?;
        if facts.always_authenticate {
            // minisign's signature is two Ed25519 signatures, and such a key wants the
            // PIN again between C_SignInit and each C_Sign, which cryptoki's one-call
            // sign cannot give it.
            return Err(KeyError::AlwaysAuthenticate { key: label });
        }
        let public = public_key(&session, uri, &label)?;
        Ok(TokenKey {
            session,
            key,
            public,
        })
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<[u8; 64], String> {
        let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
        let sig = self
            .session
            .sign(&mech, self.key, message)
            .map_err(|e| format!("the token could not sign: {e}"))?;
        sig.as_slice().try_into().map_err(|_| {
            format!(
                "the token returned {} bytes, not a 64-byte Ed25519 signature",
                sig.len()
            )
        })
    }
}

/// A key pair `keygen --pkcs11` made on a token.
pub struct Generated {
    pub public: VerifyingKey,
    pub token: String,
}

/// Make an Ed25519 key pair on the token: the private half sensitive and never
/// extractable, labelled and identified as the URI says.
pub fn generate_on_token(uri: &Pkcs11Uri, prompt: PinPrompt<'_>) -> Result<Generated, KeyError> {
    let ctx = load_module(uri)?;
    let (slot, token) = find_slot(&ctx, uri)?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(device("open a read-write session"))?;
    login(&ctx, &session, slot, &token, uri, prompt)?;
    let label = format!("token {token:?} key {}", uri.key_name());
    if !find(&session, uri, ObjectClass::PRIVATE_KEY)?.is_empty() {
        return Err(KeyError::KeyExists { key: label });
    }
    let mut named = vec![];
    if let Some(o) = &uri.object {
        named.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        named.push(Attribute::Id(id.clone()));
    }
    let mut public_t = vec![
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::EcParams(ED25519_OID.to_vec()),
    ];
    public_t.extend(named.iter().cloned());
    let mut private_t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
    ];
    private_t.extend(named);
    session
        .generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &public_t, &private_t)
        .map_err(device("make an Ed25519 key pair on the token"))?;
    let public = public_key(&session, uri, &label)?;
    Ok(Generated { public, token })
}
