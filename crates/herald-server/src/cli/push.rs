//! `herald push test`: sends one test push to one device through the same channel the
//! delivery core uses, with the app's stored credentials, guarded like a delivery
//! (`DeliveryCore::send_now`: breaker, bulkhead, endpoint slots, attempt timeout), and prints
//! what the provider answered. For checking an app's APNs (or other) credentials without
//! waiting for an event. The command runs in its own process, so the guard starts from a
//! fresh endpoint state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Subcommand;
use herald_engine::app::AppConfig;
use herald_engine::clock::{Clock, SystemClock};
use herald_engine::delivery::Channel;
use herald_engine::device::DeviceChannel;
use herald_engine::ids::{AppId, DeviceId, TenantId};
use herald_engine::push::{Delivery, DeliveryOutcome, Push, PushKind, Target};
use herald_runtime::delivery::DeliveryCore;

use crate::config::Config;
use crate::server::open_backend;
use herald_channels::apns::errors::Answer;
use herald_channels::apns::{ApnsChannel, ApnsOptions};
use herald_tenancy::apps::{AppCache, AppLookup};

#[derive(Subcommand)]
pub enum PushCommand {
    /// Send one test push to a device and print the provider's answer.
    Test {
        /// The app whose credentials are used.
        #[arg(long)]
        app: String,
        /// The device id (`herald device list --user …` shows them).
        #[arg(long)]
        device: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// What kind of push: new_message, read, incoming_call, revoked_call, missed_call,
        /// proactive.
        #[arg(long, default_value = "new_message")]
        kind: String,
    },
}

pub async fn push(command: PushCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        PushCommand::Test {
            app,
            device,
            tenant,
            kind,
        } => test(config, &tenant, &app, &device, &kind).await,
    }
}

async fn test(
    config: &Config,
    tenant: &str,
    app_id: &str,
    device_id: &str,
    kind: &str,
) -> anyhow::Result<()> {
    let tenant = TenantId::parse(tenant).map_err(|e| anyhow!("tenant id {e}"))?;
    let app_id = AppId::parse(app_id).map_err(|e| anyhow!("app id {e}"))?;
    let device_id = DeviceId::parse(device_id).map_err(|e| anyhow!("device id {e}"))?;
    let kind: PushKind = serde_json::from_value(serde_json::Value::String(kind.to_string()))
        .map_err(|_| anyhow!("--kind must be one of new_message, read, incoming_call, revoked_call, missed_call, proactive"))?;
    let backend = open_backend(config).await?;
    let store = backend.store.as_ref();
    let apps = AppCache::new(backend.store.clone(), backend.sealer.clone());
    let app = match apps.get(&tenant, &app_id).await {
        AppLookup::Found(app) => app,
        AppLookup::Gone => return Err(anyhow!("no app `{app_id}` in tenant `{tenant}`")),
        AppLookup::Unavailable(why) => return Err(anyhow!("the app cannot be read: {why}")),
    };
    let device = store
        .get_device(&tenant, &device_id)
        .await?
        .ok_or_else(|| anyhow!("no device `{device_id}` in tenant `{tenant}`"))?;
    if device.app_id != app_id {
        return Err(anyhow!(
            "device `{device_id}` belongs to app `{}`, not `{app_id}`",
            device.app_id
        ));
    }
    let badge = store
        .unread(&tenant, &device.user_id)
        .await
        .context("reading the user's unread counts")?
        .iter()
        .map(|u| u.count)
        .sum();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let channels =
        herald_channels::builtin(&config.channels(), clock.clone()).map_err(anyhow::Error::msg)?;
    let channel_name = device.channel.as_str();
    let channel = channels
        .get(channel_name)
        .ok_or_else(|| anyhow!("this server has no `{channel_name}` channel yet"))?;
    let visible = !kind.is_silent();
    let test_id = uuid::Uuid::now_v7().simple();
    let is_call = matches!(kind, PushKind::IncomingCall | PushKind::RevokedCall);
    let delivery = Delivery {
        id: format!("dlv_test_{test_id}"),
        notification_id: format!("ntf_test_{test_id}"),
        tenant_id: tenant.clone(),
        app_id: app_id.clone(),
        channel: channel_name.to_string(),
        target: Target::Device {
            device: device.clone(),
        },
        push: Push {
            kind,
            tenant_id: tenant.clone(),
            app_id: app_id.clone(),
            user_id: device.user_id.clone(),
            conversation_id: None,
            position: None,
            event_id: None,
            event_at: None,
            title: visible.then(|| "Herald test push".to_string()),
            body: visible.then(|| "If you can read this, pushes reach this device.".to_string()),
            lines: vec![],
            sender: None,
            message_count: 0,
            unread: 0,
            badge,
            call_id: is_call.then(|| format!("test-{test_id}")),
            missed_calls: 0,
            collapse_key: "herald-test".to_string(),
            high_priority: visible,
            data: Default::default(),
            created_at: now,
            expires_at: now + time::Duration::minutes(5),
            gateway: None,
            gms: None,
        },
        attempt: 1,
    };
    let guarded = Guarded {
        config,
        clock,
        delivery: &delivery,
        app: &app,
    };
    let (outcome, answer) = guarded.send(channel.as_ref(), &device.channel).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "device_id": device.id,
            "channel": channel_name,
            "endpoint": channel.endpoint_key(&delivery, &app),
            "answer": answer,
            "result": outcome,
        }))?
    );
    match outcome {
        DeliveryOutcome::Delivered { .. } => Ok(()),
        _ => Err(anyhow!("the test push was not delivered")),
    }
}

/// One test push through the delivery core's guard.
struct Guarded<'a> {
    config: &'a Config,
    clock: Arc<dyn Clock>,
    delivery: &'a Delivery,
    app: &'a AppConfig,
}

impl Guarded<'_> {
    /// APNs devices go through an APNs channel built the same way, to print APNs' own answer
    /// (status, reason, apns-id, timestamp) beside its classification.
    async fn send(
        self,
        channel: &dyn Channel,
        device_channel: &DeviceChannel,
    ) -> anyhow::Result<(DeliveryOutcome, Option<Answer>)> {
        let settings = self.config.delivery.clone();
        let budget = Duration::from_millis(settings.attempt_timeout_ms) + Duration::from_secs(5);
        let core = DeliveryCore::new(settings, self.clock.clone(), Arc::default());
        let apns = matches!(
            device_channel,
            DeviceChannel::Apns | DeviceChannel::ApnsVoip
        )
        .then(|| KeepsAnswer::new(ApnsChannel::new(self.clock, ApnsOptions::default())));
        let through: &dyn Channel = match &apns {
            Some(apns) => apns,
            None => channel,
        };
        let outcome = core
            .send_now(through, self.delivery, self.app, budget)
            .await
            .map_err(|why| anyhow!("the test push was not sent: {why}"))?;
        Ok((outcome, apns.and_then(KeepsAnswer::answer)))
    }
}

/// The APNs channel, keeping APNs' answer to the last request.
struct KeepsAnswer {
    apns: ApnsChannel,
    answer: Mutex<Option<Answer>>,
}

impl KeepsAnswer {
    fn new(apns: ApnsChannel) -> KeepsAnswer {
        KeepsAnswer {
            apns,
            answer: Mutex::new(None),
        }
    }

    fn answer(self) -> Option<Answer> {
        self.answer
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Channel for KeepsAnswer {
    async fn deliver(&self, delivery: &Delivery, app: &AppConfig) -> DeliveryOutcome {
        let Target::Device { device } = &delivery.target else {
            return self.apns.deliver(delivery, app).await;
        };
        let sent = self.apns.send(delivery, device, app).await;
        *self
            .answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = sent.answer;
        sent.outcome
    }

    fn endpoint_key(&self, delivery: &Delivery, app: &AppConfig) -> String {
        self.apns.endpoint_key(delivery, app)
    }
}
