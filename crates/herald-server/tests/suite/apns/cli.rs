//! `herald push test`.

use herald_testkit::TestHub;
use herald_testkit::fake_apns::{FakeApns, Reply, TEAM_ID};
use serde_json::{Value, json};

use super::*;

#[tokio::test]
async fn herald_push_test_sends_one_push_through_the_apps_credentials_and_prints_the_answer() {
    let fake = FakeApns::builder().topic(TOPIC).start().await;
    let hub = TestHub::start().await;
    let (status, body) = hub
        .put("/v1/apps/chat", &hub.key, app_document(&fake.url()))
        .await;
    assert_eq!(status, 201, "{body}");
    let user = hub.token("visitor-1").await;
    let (status, device) = hub
        .post(
            "/v1/me/devices",
            &user,
            json!({"app_id": "chat", "channel": "apns", "token": "abcd0001", "platform": "ios"}),
        )
        .await;
    assert_eq!(status, 201, "{device}");
    let device_id = device["id"].as_str().unwrap().to_string();
    let data = hub.data_dir().to_path_buf();
    // The fake runs on this runtime: the binary is awaited, never waited for by blocking.
    let run = |device: &str| {
        let (device, data) = (device.to_string(), data.clone());
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
                .args([
                    "push", "test", "--app", "chat", "--device", &device, "--data",
                ])
                .arg(&data)
                .output()
                .await
                .expect("herald runs");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };

    let (ok, stdout, stderr) = run(&device_id).await;
    assert!(ok, "{stdout}\n{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    let request = fake.wait_for(1).await.remove(0);
    assert_eq!(request.token, "abcd0001");
    assert_eq!(request.payload["aps"]["alert"]["title"], "Herald test push");
    assert_eq!(printed["result"]["outcome"], "delivered");
    assert_eq!(printed["answer"]["status"], 200);
    assert_eq!(
        printed["answer"]["apns_id"].as_str(),
        request.header("apns-id")
    );
    assert_eq!(
        printed["result"]["provider_id"].as_str(),
        request.header("apns-id")
    );
    assert_eq!(
        printed["endpoint"],
        format!("apns:{}:{TEAM_ID}", fake.url())
    );

    fake.script("abcd0001", vec![Reply::bad_device_token()]);
    let (ok, stdout, stderr) = run(&device_id).await;
    assert!(!ok);
    assert!(stderr.contains("not delivered"), "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["result"]["outcome"], "invalid_target");
    assert_eq!(printed["answer"]["status"], 400);
    assert_eq!(printed["answer"]["reason"], "BadDeviceToken");
    assert!(
        printed["result"]["reason"]
            .as_str()
            .unwrap()
            .contains("400 BadDeviceToken")
    );
    let (ok, _, stderr) = run("no-such-device").await;
    assert!(!ok);
    assert!(stderr.contains("no device"), "{stderr}");
}
