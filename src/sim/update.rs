//! `update/send`: build the data update the hub posts and post it to every
//! configured target with the hub's own HTTP client.

use super::fault::BadPost;
use super::state::{unix_now, Delivery, SimState};
use crate::device::config::{update_api_key, update_targets};
use crate::device::{DataUpdate, Sample, SensorSlot};

/// The update the hub would post to `url` now: sensor slots 1..=channels,
/// then the battery slot on battery hubs, then one slot per actuator.
pub fn data_update(state: &SimState, url: &str) -> DataUpdate {
    let p = state.profile();
    let now = chrono::Utc::now();
    let t = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let sample = |v: f64| vec![Sample { v, t: t.clone() }];
    let sensors: Vec<SensorSlot> = p
        .sensors()
        .iter()
        .map(|s| s.value)
        .chain(p.on_battery().then_some(p.hub().batt_v))
        .chain(state.actuator_states().into_iter().map(f64::from))
        .enumerate()
        .map(|(i, v)| SensorSlot {
            slot: i as u32 + 1,
            samples: sample(v),
        })
        .collect();
    DataUpdate {
        api_key: update_api_key(&state.config(), url),
        mac: p.mac().as_str().to_owned(),
        error_code: 0,
        sensors,
        send_time: unix_now(),
        wifi_str: p.wifi().strength.parse().unwrap_or_default(),
    }
}

/// What `update/send` posts (the `no-post` and `bad-post` faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Post {
    Good,
    None,
    Bad(BadPost),
}

/// Post a data update to every target of the stored config, in the
/// background (the hub answers `update/send` first). Returns the targets.
pub fn send_updates(state: &SimState) -> Vec<String> {
    send_updates_as(state, Post::Good)
}

/// [`send_updates`], posting as `post` says.
pub fn send_updates_as(state: &SimState, post: Post) -> Vec<String> {
    let targets = update_targets(&state.config());
    if post == Post::None {
        return targets;
    }
    for url in &targets {
        let mut body = serde_json::to_value(data_update(state, url)).unwrap_or_default();
        if let Post::Bad(b) = post {
            spoil(&mut body, b);
        }
        let state = state.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let result = state
                .0
                .update_client
                .post(&url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| error_chain(&e));
            state.record_delivery(Delivery { url, result });
        });
    }
    targets
}

fn spoil(body: &mut serde_json::Value, how: BadPost) {
    match how {
        BadPost::Mac => body["mac"] = "112233445566".into(),
        BadPost::Key => body["api_key"] = "".into(),
        BadPost::Slots => {
            if let Some(list) = body["sensors"].as_array_mut() {
                list.pop();
            }
        }
        BadPost::Time => {
            if let Some(list) = body["sensors"].as_array_mut() {
                for s in list {
                    if let Some(samples) = s["samples"].as_array_mut() {
                        for sample in samples {
                            sample["t"] = unix_now().into();
                        }
                    }
                }
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
