//! One `/notify` carried out: each device's Matrix app id resolved to the Herald app that
//! serves it, its payload composed, and the push sent at once through the delivery core's
//! guarded send (`DeliveryCore::send_now`: the same channels, breakers, bulkheads and endpoint
//! slots as stored deliveries), retried while the request's budget lasts. Nothing is stored:
//! the homeserver holds the state and retries a failed request itself.
//!
//! Homeservers retry requests that failed or timed out, so a device that already got an event
//! is not sent it again for [`REMEMBER_FOR`] (Matrix: "use `event_id` for duplicate
//! suppression"); each push's id is derived from (app id, pushkey, event id), so APNs sees one
//! `apns-id` for every retry of it too.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use herald_engine::app::{AppConfig, MatrixApp, MatrixChannel};
use herald_engine::device::{
    Device as HeraldDevice, DeviceChannel, Platform, SubscriptionKeys, WebPushSubscription,
};
use herald_engine::ids::{AppId, DeviceId, TenantId, UserId};
use herald_engine::push::{Delivery, DeliveryOutcome, GatewayPayload, Push, PushKind, Target};
use herald_runtime::Runtime;
use sha2::{Digest, Sha256};

use super::compose::{self, Skip};
use super::request::{Device, MAX_PUSHKEY_BYTES, Notification};

/// How long a device that got an event is remembered, against a homeserver's retries.
pub const REMEMBER_FOR: Duration = Duration::from_secs(600);
/// Most (device, event) pairs remembered; the oldest go first.
const REMEMBER_AT_MOST: usize = 100_000;
/// The first pause before trying a provider again within a request; it doubles.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// What happened to one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceResult {
    Sent,
    /// Already sent for this event (a homeserver's retry).
    Duplicate,
    /// Nothing to tell this device.
    Skipped,
    /// The pushkey is dead or was never valid: the homeserver removes the pusher.
    Rejected(String),
    /// Could not go within the budget, for a reason that is not the pushkey's.
    Failed(String),
}

impl DeviceResult {
    pub fn label(&self) -> &'static str {
        match self {
            DeviceResult::Sent => "sent",
            DeviceResult::Duplicate => "duplicate",
            DeviceResult::Skipped => "skipped",
            DeviceResult::Rejected(_) => "rejected",
            DeviceResult::Failed(_) => "failed",
        }
    }
}

/// The (device, event) pairs already sent.
#[derive(Default)]
pub struct Recent {
    inner: Mutex<RecentInner>,
}

#[derive(Default)]
struct RecentInner {
    sent: HashMap<[u8; 32], Instant>,
    order: VecDeque<([u8; 32], Instant)>,
}

impl Recent {
    fn seen(&self, key: &[u8; 32]) -> bool {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .sent
            .get(key)
            .is_some_and(|at| at.elapsed() < REMEMBER_FOR)
    }

    fn remember(&self, key: [u8; 32]) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some((old, at)) = inner.order.front().copied() {
            if at.elapsed() < REMEMBER_FOR && inner.order.len() < REMEMBER_AT_MOST {
                break;
            }
            inner.order.pop_front();
            if inner.sent.get(&old) == Some(&at) {
                inner.sent.remove(&old);
            }
        }
        inner.sent.insert(key, now);
        inner.order.push_back((key, now));
    }
}

/// What the gateway needs besides the runtime.
pub struct Gateway {
    pub runtime: Runtime,
    pub tenant: TenantId,
    pub budget: Duration,
    pub recent: Recent,
}

/// The Herald app serving a Matrix app id, and how.
struct Serving {
    app_id: AppId,
    app: Arc<AppConfig>,
    mapping: MatrixApp,
}

enum Resolved {
    Found(Serving),
    /// Unknown or claimed by several apps: the pushkey is rejected, as Sygnal does.
    NotServed(&'static str),
    /// The tenant's apps could not be read: not the pushkey's fault.
    Unavailable(String),
}

impl Gateway {
    async fn resolve(&self, matrix_app_id: &str) -> Resolved {
        let apps = match self.runtime.apps.tenant(&self.tenant).await {
            Ok(apps) => apps,
            Err(e) => return Resolved::Unavailable(format!("reading the apps: {e}")),
        };
        let mut serving = apps.iter().filter_map(|(id, app)| {
            let mapping = app.matrix.as_ref()?.app_ids.get(matrix_app_id)?;
            Some(Serving {
                app_id: id.clone(),
                app: app.clone(),
                mapping: mapping.clone(),
            })
        });
        match (serving.next(), serving.next()) {
            (Some(found), None) => Resolved::Found(found),
            (None, _) => Resolved::NotServed("no app serves this app id"),
            (Some(_), Some(_)) => Resolved::NotServed("several apps claim this app id"),
        }
    }

    /// Carries `n` to `device` within `deadline`.
    pub async fn dispatch(
        &self,
        n: &Notification,
        device: &Device,
        deadline: Instant,
    ) -> DeviceResult {
        if device.pushkey.len() > MAX_PUSHKEY_BYTES {
            return DeviceResult::Rejected("the pushkey is longer than 512 bytes".into());
        }
        let serving = match self.resolve(&device.app_id).await {
            Resolved::Found(serving) => serving,
            Resolved::NotServed(why) => return DeviceResult::Rejected(why.into()),
            Resolved::Unavailable(why) => return DeviceResult::Failed(why),
        };
        let key = dedup_key(device, n);
        if let Some(key) = &key
            && self.recent.seen(key)
        {
            return DeviceResult::Duplicate;
        }
        let delivery = match self.delivery(n, device, &serving, key.as_ref()) {
            Ok(delivery) => delivery,
            Err(Skip::Nothing) => return DeviceResult::Skipped,
            Err(Skip::Reject(why)) => return DeviceResult::Rejected(why.into()),
        };
        let result = self.send(&delivery, &serving, deadline).await;
        if let (DeviceResult::Sent, Some(key)) = (&result, key) {
            self.recent.remember(key);
        }
        result
    }

    /// Sends, and tries again after a retryable answer while the budget lasts.
    async fn send(
        &self,
        delivery: &Delivery,
        serving: &Serving,
        deadline: Instant,
    ) -> DeviceResult {
        let Some(channel) = self.runtime.channels.get(&delivery.channel) else {
            return DeviceResult::Failed(format!(
                "this server has no {} channel",
                delivery.channel
            ));
        };
        let mut pause = FIRST_RETRY;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return DeviceResult::Failed("the request's time budget ran out".into());
            }
            let outcome = self
                .runtime
                .delivery
                .send_now(channel.as_ref(), delivery, &serving.app, left)
                .await;
            let (why, after) = match outcome {
                Ok(DeliveryOutcome::Delivered { .. }) => return DeviceResult::Sent,
                Ok(DeliveryOutcome::InvalidTarget { reason }) => {
                    return DeviceResult::Rejected(reason);
                }
                Ok(DeliveryOutcome::Permanent { reason, .. }) => {
                    return DeviceResult::Failed(reason);
                }
                Ok(DeliveryOutcome::Retryable {
                    reason, after_ms, ..
                }) => (reason, after_ms.map(Duration::from_millis)),
                Ok(DeliveryOutcome::Unsent { reason }) => (reason, None),
                Err(refused) => return DeviceResult::Failed(refused.to_string()),
            };
            let wait = after.unwrap_or(pause);
            if Instant::now() + wait >= deadline {
                return DeviceResult::Failed(why);
            }
            tokio::time::sleep(wait).await;
            pause = pause.saturating_mul(2);
        }
    }

    fn delivery(
        &self,
        n: &Notification,
        device: &Device,
        serving: &Serving,
        key: Option<&[u8; 32]>,
    ) -> Result<Delivery, Skip> {
        let mapping = &serving.mapping;
        let (channel, token, subscription, payload, collapse_key) = match mapping.channel {
            MatrixChannel::Apns => {
                let token = if mapping.convert_device_token_to_hex {
                    base64::engine::general_purpose::STANDARD
                        .decode(&device.pushkey)
                        .map(hex::encode)
                        .map_err(|_| Skip::Reject("the pushkey is not base64"))?
                } else {
                    device.pushkey.clone()
                };
                (
                    DeviceChannel::Apns,
                    token,
                    None,
                    compose::apns(n, device)?,
                    String::new(),
                )
            }
            MatrixChannel::Fcm => (
                DeviceChannel::Fcm,
                device.pushkey.clone(),
                None,
                compose::fcm(n, device)?,
                String::new(),
            ),
            MatrixChannel::Webpush => {
                let s = compose::subscription(device)?;
                let subscription = WebPushSubscription {
                    endpoint: s.endpoint,
                    keys: SubscriptionKeys {
                        p256dh: s.p256dh,
                        auth: s.auth,
                    },
                    expiration_time: None,
                };
                (
                    DeviceChannel::Webpush,
                    String::new(),
                    Some(subscription),
                    compose::webpush(n, device)?,
                    compose::webpush_collapse_key(n, device),
                )
            }
        };
        let now = self.runtime.clock.now();
        let registered = time::OffsetDateTime::from_unix_timestamp(device.pushkey_ts)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let id = match key {
            Some(key) => hex::encode(&key[..16]),
            None => uuid::Uuid::now_v7().simple().to_string(),
        };
        let user = UserId::parse("matrix").expect("a valid user id");
        let target = HeraldDevice {
            id: DeviceId::parse(format!("mx_{id}")).expect("hex makes a valid device id"),
            app_id: serving.app_id.clone(),
            user_id: user.clone(),
            channel,
            token,
            subscription,
            platform: match channel {
                DeviceChannel::Apns => Platform::Ios,
                DeviceChannel::Webpush => Platform::Web,
                _ => Platform::Android,
            },
            locale: None,
            installation_id: None,
            // APNs keeps a device that registered after it saw the token unregistered.
            created_at: registered,
            updated_at: registered,
        };
        Ok(Delivery {
            id: format!("mx_{id}"),
            notification_id: format!("mx_{id}"),
            tenant_id: self.tenant.clone(),
            app_id: serving.app_id.clone(),
            channel: channel.as_str().to_string(),
            push: Push {
                kind: PushKind::NewMessage,
                tenant_id: self.tenant.clone(),
                app_id: serving.app_id.clone(),
                user_id: user,
                conversation_id: None,
                position: None,
                event_id: None,
                event_at: None,
                title: None,
                body: None,
                lines: vec![],
                sender: None,
                message_count: 0,
                unread: n.counts.unread.unwrap_or(0),
                badge: n.counts.unread.unwrap_or(0),
                call_id: None,
                missed_calls: n.counts.missed_calls.unwrap_or(0),
                collapse_key,
                high_priority: !n.low_priority,
                data: Default::default(),
                created_at: now,
                expires_at: now + time::Duration::seconds(mapping.ttl_s as i64),
                gateway: Some(GatewayPayload(payload)),
                gms: None,
            },
            target: Target::Device { device: target },
            attempt: 1,
        })
    }
}

/// (app id, pushkey, event id) hashed: the identity of one push for a homeserver's retries.
/// Count-only notifications (no event) are idempotent badge updates: never de-duplicated.
fn dedup_key(device: &Device, n: &Notification) -> Option<[u8; 32]> {
    let event = n.event_id.as_deref()?;
    let mut hash = Sha256::new();
    for part in [device.app_id.as_str(), device.pushkey.as_str(), event] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    Some(hash.finalize().into())
}
