//! The hub's identity: the MAC of the first `info/get` answer is pinned,
//! a later answer with another MAC stops every further write, and before
//! each write the MAC is read again.

use reqwest::Method;
use serde_json::Value;

use crate::device::Mac;

use super::{CallError, HubClient};

impl HubClient {
    /// The hub's MAC as this client holds it (the first one seen).
    pub fn pinned_mac(&self) -> Option<Mac> {
        self.lock().mac.clone()
    }

    /// The MAC change seen on this address, if any: (expected, got).
    pub fn identity_changed(&self) -> Option<(Mac, Mac)> {
        self.lock().identity_changed.clone()
    }

    pub(super) fn observe_mac(&self, mac: Mac) -> Result<(), CallError> {
        let mut st = self.lock();
        if let Some((expected, got)) = &st.identity_changed {
            return Err(CallError::IdentityChanged {
                hub: self.hub.clone(),
                expected: expected.clone(),
                got: got.clone(),
            });
        }
        match &st.mac {
            None => {
                st.mac = Some(mac);
                Ok(())
            }
            Some(m) if *m == mac => Ok(()),
            Some(m) => {
                let (expected, got) = (m.clone(), mac);
                st.identity_changed = Some((expected.clone(), got.clone()));
                Err(CallError::IdentityChanged {
                    hub: self.hub.clone(),
                    expected,
                    got,
                })
            }
        }
    }

    /// Before every write: the hub at this address must still be the one
    /// this client first talked to. Reads its MAC now; a write is sent only
    /// when it matches (the first MAC seen is held from then on).
    pub(super) async fn check_identity(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<(), CallError> {
        if let Some((expected, got)) = self.identity_changed() {
            return Err(CallError::IdentityChanged {
                hub: self.hub.clone(),
                expected,
                got,
            });
        }
        let doc = match self.info_raw(&["wifi"]).await {
            Ok(doc) => doc,
            Err(e @ CallError::IdentityChanged { .. }) => return Err(e),
            Err(e) => {
                return Err(CallError::IdentityUnknown {
                    hub: self.hub.clone(),
                    method: method.to_string(),
                    path: path.to_owned(),
                    detail: e.to_string(),
                })
            }
        };
        let has_mac = doc
            .get("wifi")
            .and_then(|w| w.get("mac_addr"))
            .and_then(Value::as_str)
            .and_then(Mac::parse)
            .is_some();
        if has_mac {
            Ok(())
        } else {
            Err(CallError::IdentityUnknown {
                hub: self.hub.clone(),
                method: method.to_string(),
                path: path.to_owned(),
                detail: "info/get carried no valid wifi.mac_addr".into(),
            })
        }
    }
}
