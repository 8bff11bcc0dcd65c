//! The browser's side of passkeys: hands the server's options (JSON, as webauthn-rs writes them)
//! to `navigator.credentials` and returns its answer as JSON for the server. The few lines of
//! JavaScript below ([`BRIDGE_JS`], an inline script of every page) only convert between base64url
//! text and the binary the WebAuthn API takes; every check happens on the server.

/// Why the browser gave no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No WebAuthn in this browser (or no script running).
    Unsupported,
    /// The person cancelled, the time ran out, or no passkey fits (`NotAllowedError`).
    NotAllowed,
    /// The device has this passkey already (`InvalidStateError` when adding one).
    AlreadyRegistered,
    /// A conditional request was aborted for a button's.
    Aborted,
    Other(String),
}

/// The page's script for passkeys (an inline script with the page's nonce, so that it costs no
/// request and no file that browsers would have to revalidate): `window.promioPasskeys`.
pub const BRIDGE_JS: &str = r#"(() => {
const enc = (buf) => {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};
const dec = (text) => {
  let s = text.replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  const bin = atob(s);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes.buffer;
};
let waiting = null;
const stopWaiting = () => {
  if (waiting) { const w = waiting; waiting = null; w.abort(); }
};
function passkeysSupported() {
  return typeof window.PublicKeyCredential === 'function' && !!navigator.credentials;
}
async function conditionalMediation() {
  try {
    return passkeysSupported()
      && typeof PublicKeyCredential.isConditionalMediationAvailable === 'function'
      && await PublicKeyCredential.isConditionalMediationAvailable();
  } catch (e) { return false; }
}
function deviceName() {
  const ua = navigator.userAgent || '';
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox'
    : /Chromium\//.test(ua) ? 'Chromium' : /Chrome\//.test(ua) ? 'Chrome'
    : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const system = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS'
    : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows'
    : /Linux/.test(ua) ? 'Linux' : '';
  return system ? `${browser} on ${system}` : browser;
}
const failure = (e) => (e && e.name) ? e.name : String(e);
async function passkeyCreate(json) {
  stopWaiting();
  const o = JSON.parse(json).publicKey;
  o.challenge = dec(o.challenge);
  o.user.id = dec(o.user.id);
  (o.excludeCredentials || []).forEach((c) => { c.id = dec(c.id); });
  let c;
  try { c = await navigator.credentials.create({ publicKey: o }); } catch (e) { throw failure(e); }
  const r = c.response;
  return JSON.stringify({
    id: c.id, rawId: enc(c.rawId), type: c.type,
    response: {
      attestationObject: enc(r.attestationObject),
      clientDataJSON: enc(r.clientDataJSON),
      transports: typeof r.getTransports === 'function' ? r.getTransports() : undefined,
    },
    extensions: c.getClientExtensionResults(),
  });
}
async function passkeyGet(json, conditional) {
  stopWaiting();
  const o = JSON.parse(json).publicKey;
  o.challenge = dec(o.challenge);
  (o.allowCredentials || []).forEach((c) => { c.id = dec(c.id); });
  const controller = new AbortController();
  const request = { publicKey: o, signal: controller.signal };
  if (conditional) { request.mediation = 'conditional'; waiting = controller; }
  let c;
  try { c = await navigator.credentials.get(request); } catch (e) { throw failure(e); }
  finally { if (waiting === controller) waiting = null; }
  const r = c.response;
  return JSON.stringify({
    id: c.id, rawId: enc(c.rawId), type: c.type,
    response: {
      authenticatorData: enc(r.authenticatorData),
      clientDataJSON: enc(r.clientDataJSON),
      signature: enc(r.signature),
      userHandle: r.userHandle ? enc(r.userHandle) : null,
    },
    extensions: c.getClientExtensionResults(),
  });
}
window.promioPasskeys = {
  supported: passkeysSupported, conditional: conditionalMediation, deviceName,
  create: passkeyCreate, get: passkeyGet,
};
})();"#;

#[cfg(feature = "hydrate")]
mod js {
    use wasm_bindgen::{JsCast, JsValue};

    fn bridge() -> Option<JsValue> {
        let window = web_sys::window()?;
        js_sys::Reflect::get(&window, &"promioPasskeys".into())
            .ok()
            .filter(|b| !b.is_undefined())
    }

    /// Calls `promioPasskeys[name](args…)`.
    fn call(name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        let bridge = bridge().ok_or_else(|| JsValue::from_str("NotSupportedError"))?;
        let function: js_sys::Function = js_sys::Reflect::get(&bridge, &name.into())?.dyn_into()?;
        let args: js_sys::Array = args.iter().collect();
        function.apply(&bridge, &args)
    }

    async fn awaited(name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
        let promise: js_sys::Promise = call(name, args)?.dyn_into()?;
        wasm_bindgen_futures::JsFuture::from(promise).await
    }

    pub fn passkeys_supported() -> bool {
        call("supported", &[])
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    pub async fn conditional_mediation() -> Result<JsValue, JsValue> {
        awaited("conditional", &[]).await
    }

    pub fn device_name() -> String {
        call("deviceName", &[])
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_else(|| "Passkey".to_owned())
    }

    pub async fn passkey_create(options: String) -> Result<JsValue, JsValue> {
        awaited("create", &[options.into()]).await
    }

    pub async fn passkey_get(options: String, conditional: bool) -> Result<JsValue, JsValue> {
        awaited("get", &[options.into(), conditional.into()]).await
    }
}

#[cfg(feature = "hydrate")]
fn refused(error: wasm_bindgen::JsValue) -> Refused {
    match error.as_string().as_deref() {
        Some("NotAllowedError") => Refused::NotAllowed,
        Some("InvalidStateError") => Refused::AlreadyRegistered,
        Some("AbortError") => Refused::Aborted,
        Some(other) => Refused::Other(other.to_owned()),
        None => Refused::Other(String::new()),
    }
}

/// Whether this browser can use passkeys at all.
pub fn supported() -> bool {
    #[cfg(feature = "hydrate")]
    {
        js::passkeys_supported()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// Whether the browser offers passkeys in the autofill of the login form.
pub async fn autofill_supported() -> bool {
    #[cfg(feature = "hydrate")]
    {
        js::conditional_mediation()
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// Whether the element with this id has the focus (a passkey picked in a field's autofill leaves
/// the focus in that field).
pub fn focused(id: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .is_some_and(|e| e.id() == id)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = id;
        false
    }
}

/// A name for a new passkey from this device ("Chrome on Linux").
pub fn device_name() -> String {
    #[cfg(feature = "hydrate")]
    {
        js::device_name()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        "Passkey".to_owned()
    }
}

/// Creates a passkey with the browser's dialog; returns its answer (JSON).
pub async fn create(options: String) -> Result<String, Refused> {
    #[cfg(feature = "hydrate")]
    {
        let answer = js::passkey_create(options).await.map_err(refused)?;
        answer.as_string().ok_or(Refused::Other(String::new()))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = options;
        Err(Refused::Unsupported)
    }
}

/// Signs in with a passkey (the browser's dialog, or with `conditional` its autofill); returns its
/// answer (JSON).
pub async fn get(options: String, conditional: bool) -> Result<String, Refused> {
    #[cfg(feature = "hydrate")]
    {
        let answer = js::passkey_get(options, conditional)
            .await
            .map_err(refused)?;
        answer.as_string().ok_or(Refused::Other(String::new()))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (options, conditional);
        Err(Refused::Unsupported)
    }
}
