//! Cleanup and `restore` over the run's shared client.

use super::HubOps;
use crate::device::ActuatorSlot;
use crate::session::client::{CallError, HubClient};

impl HubOps for HubClient {
    type Error = CallError;

    async fn actuator_off(&self, slot: u32) -> Result<(), CallError> {
        HubClient::actuator_off(self, slot).await
    }

    async fn actuator_status(&self) -> Result<Vec<ActuatorSlot>, CallError> {
        Ok(HubClient::actuator_status(self).await?.actuators)
    }

    async fn config_get(&self) -> Result<String, CallError> {
        Ok(HubClient::config_get(self).await?.text)
    }

    async fn config_set(&self, config: &str) -> Result<(), CallError> {
        HubClient::config_set_exact(self, config).await
    }

    fn refused(e: &CallError) -> bool {
        matches!(e, CallError::Status { status, .. } if (400..500).contains(status))
    }

    async fn mac(&self) -> Result<String, CallError> {
        let info = self.info(&["wifi"]).await?;
        Ok(info.wifi.map(|w| w.mac_addr).unwrap_or_default())
    }
}
