//! Cluster mode with real processes: three `herald serve` nodes on one PostgreSQL schema and
//! one Redis prefix of their own (so cluster tests run side by side). PostgreSQL and Redis are
//! found at HERALD_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) and
//! HERALD_TEST_REDIS_URL (default redis://127.0.0.1:6379); a test fails — never skips — when
//! they cannot be reached.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use herald_testkit::LiveClient;
use serde_json::{Value, json};

use super::*;

/// Long enough for a slow shared machine, short enough that failover tests stay quick.
const LEASE_MS: &str = "1500";
const NODE_TTL_MS: &str = "1500";

fn postgres_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("HERALD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

struct Cluster {
    /// The database URL the nodes get (a test may put a proxy in between).
    postgres: String,
    schema: String,
    prefix: String,
    master_key: String,
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Running>,
    key: String,
    http: reqwest::Client,
}

impl Cluster {
    /// Starts `n` nodes; the first creates the default tenant, whose key the test uses.
    fn start(n: usize) -> Cluster {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut cluster = Cluster {
            postgres: postgres_url(),
            schema: format!("herald_cluster_{id}"),
            prefix: format!("herald-test-{id}"),
            master_key: base64::engine::general_purpose::STANDARD
                .encode(*b"a cluster test's shared key 32b!"),
            dirs: Vec::new(),
            nodes: Vec::new(),
            key: String::new(),
            http: reqwest::Client::new(),
        };
        for i in 0..n {
            cluster.add(i);
            if i == 0 {
                cluster.key = cluster.default_key();
            }
        }
        cluster
    }

    /// The default tenant's key, which the first node wrote into its folder.
    fn default_key(&self) -> String {
        let file = self.dirs[0].path().join("default-tenant.key");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| {
                panic!(
                    "the first node creates the default tenant ({e}); its log:\n{}",
                    self.log(0)
                )
            })
            .trim()
            .to_string()
    }

    fn add(&mut self, i: usize) {
        let dir = tempfile::tempdir().unwrap();
        let node_id = format!("n{i}");
        let env = [
            ("HERALD_STORE", "postgres"),
            ("HERALD_NODE_ID", node_id.as_str()),
            ("HERALD_POSTGRES__URL", &self.postgres),
            ("HERALD_POSTGRES__SCHEMA", &self.schema),
            ("HERALD_REDIS__URL", &redis_url()),
            ("HERALD_REDIS__PREFIX", &self.prefix),
            ("HERALD_MASTER_KEY", &self.master_key),
            ("HERALD_CLUSTER__LEASE_MS", LEASE_MS),
            ("HERALD_CLUSTER__NODE_TTL_MS", NODE_TTL_MS),
            ("HERALD_LIVE__RECONNECT_GRACE_MS", "2000"),
            ("HERALD_LOG__LEVEL", "info"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let data = dir.path().to_str().unwrap().to_string();
        self.nodes.push(serve_with(
            &["--listen", "127.0.0.1:0", "--data", &data],
            &env,
        ));
        self.dirs.push(dir);
    }

    fn base(&self, i: usize) -> &str {
        &self.nodes[i].base
    }

    fn log(&self, i: usize) -> String {
        self.nodes[i].stderr.lock().unwrap().clone()
    }

    /// The node among `among` that decides now (by its log), waiting until one does.
    fn decider(&self, among: &[usize]) -> usize {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(&i) = among
                .iter()
                .find(|&&i| self.log(i).contains("this node now decides"))
            {
                return i;
            }
            assert!(Instant::now() < deadline, "no node took the engine lease");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    async fn put(&self, node: usize, path: &str, body: Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base(node)))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "PUT {path}: {}", r.status());
    }

    async fn token(&self, node: usize, user: &str) -> String {
        let token: Value = self
            .http
            .post(format!("{}/v1/users/{user}/tokens", self.base(node)))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        token["token"].as_str().unwrap().to_string()
    }

    /// Registers a phone for `user` through `node`.
    async fn phone(&self, node: usize, user: &str, n: usize) {
        let device = json!({"app_id": "chat", "channel": "apns", "token": format!("{n:04x}"), "platform": "ios"});
        let r = self
            .http
            .post(format!("{}/v1/me/devices", self.base(node)))
            .bearer_auth(self.token(node, user).await)
            .json(&device)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "device: {}", r.status());
    }

    /// Posts an agent message through `node`; its position once acknowledged.
    async fn message(&self, node: usize, id: &str, conversation: &str) -> Option<u64> {
        let event = agent_message(id, conversation);
        let r = self
            .http
            .post(format!("{}/v1/events", self.base(node)))
            .bearer_auth(&self.key)
            .json(&event)
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return None;
        }
        let body: Value = r.json().await.ok()?;
        body["position"].as_u64()
    }

    /// `GET path` through `node`, as JSON.
    async fn get(&self, node: usize, path: &str) -> Value {
        get_json(&self.http, format!("{}{path}", self.base(node)), &self.key).await
    }

    async fn decisions(&self, node: usize, user: &str) -> Vec<Value> {
        let list = self
            .get(node, &format!("/v1/users/{user}/notifications?limit=500"))
            .await;
        list["notifications"].as_array().unwrap().clone()
    }

    /// Waits until `node` sees `user` in presence `state`.
    async fn wait_presence(&self, node: usize, user: &str, state: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let presence = self.get(node, &format!("/v1/users/{user}/presence")).await;
            if presence["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {node} never saw {user} {state}: {presence}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every acknowledged message decided once, read through `node` (see `decided_once`).
    async fn all_decided_once(&self, node: usize, users: usize, acked: &[(usize, u64)]) {
        let within = Duration::from_secs(60);
        decided_once(&self.http, self.base(node), &self.key, users, acked, within).await;
    }

    /// Visitors v0..v{users} each in conversation c{u} with a phone, and the app's grace.
    async fn visitors(&self, users: usize, grace_ms: u64) {
        self.put(
            0,
            "/v1/apps/chat",
            json!({"rules": {"grace_delay_ms": grace_ms, "coalesce_window_ms": 200}}),
        )
        .await;
        for u in 0..users {
            let node = u % self.nodes.len();
            self.put(
                node,
                &format!("/v1/conversations/c{u}/participants/v{u}"),
                json!({"role": "visitor"}),
            )
            .await;
            self.phone(node, &format!("v{u}"), u).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
        let _ = Command::new("psql")
            .arg(postgres_url())
            .args([
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema),
            ])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_looking_on_one_node_sees_events_posted_to_another_once_in_order_and_gets_no_push() {
    let cluster = Cluster::start(3);
    cluster.visitors(1, 300).await;
    // The visitor looks through node 2; the agent writes through nodes 0 and 1.
    let mut visitor = LiveClient::connect(cluster.base(2), &cluster.token(2, "v0").await, "").await;
    visitor.resume(json!({})).await;
    cluster.wait_presence(0, "v0", "foreground").await;
    let mut posted = Vec::new();
    for i in 0..20 {
        posted.push(
            cluster
                .message(i % 2, &format!("e{i}"), "c0")
                .await
                .unwrap(),
        );
    }
    let mut seen = Vec::new();
    while seen.len() < posted.len() {
        let frame = visitor.next_of("event").await;
        seen.push(frame["event"]["position"].as_u64().unwrap());
    }
    let mut expected = posted.clone();
    expected.sort();
    assert_eq!(seen, expected, "every event once, in order");
    assert_eq!(
        visitor
            .try_next(Duration::from_millis(500))
            .await
            .filter(|f| f["type"] == "event"),
        None,
        "no duplicate"
    );
    // Past the grace: every message decided, none sent, because v0 looked on node 2.
    cluster
        .all_decided_once(1, 1, &posted.iter().map(|p| (0, *p)).collect::<Vec<_>>())
        .await;
    for n in cluster.decisions(0, "v0").await {
        assert_eq!(n["looking"]["state"], "foreground", "{n}");
        assert_eq!(
            n["status"], "suppressed",
            "v0 was looking on another node: {n}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_deciding_node_mid_load_neither_drops_nor_doubles_a_decision() {
    let mut cluster = Cluster::start(3);
    const USERS: usize = 6;
    cluster.visitors(USERS, 400).await;
    let decider = cluster.decider(&[0, 1, 2]);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != decider).collect();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // Writers spread over the survivors keep going through the kill.
    let mut writers = Vec::new();
    for (w, &node) in survivors.iter().enumerate() {
        let base = cluster.base(node).to_string();
        let (http, key, acked) = (cluster.http.clone(), cluster.key.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..60 {
                let u = (i + w) % USERS;
                let event = agent_message(&format!("w{w}-{i}"), &format!("c{u}"));
                let r = http
                    .post(format!("{base}/v1/events"))
                    .bearer_auth(&key)
                    .json(&event)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "a surviving node acknowledges");
                let body: Value = r.json().await.unwrap();
                acked
                    .lock()
                    .unwrap()
                    .push((u, body["position"].as_u64().unwrap()));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    // Let timers build up on the deciding node, then kill it mid-load.
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.nodes[decider].child.kill().unwrap();
    cluster.nodes[decider].child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let taker = cluster.decider(&survivors);
    let acked = acked.lock().unwrap().clone();
    cluster.all_decided_once(taker, USERS, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deciding_node_stopped_past_its_lease_decides_nothing_twice_when_it_wakes() {
    let cluster = Cluster::start(2);
    const USERS: usize = 4;
    cluster.visitors(USERS, 300).await;
    let stopped = cluster.decider(&[0, 1]);
    let other = 1 - stopped;
    let mut acked = Vec::new();
    for i in 0..30 {
        let u = i % USERS;
        acked.push((
            u,
            cluster
                .message(other, &format!("a{i}"), &format!("c{u}"))
                .await
                .unwrap(),
        ));
    }
    // A GC-like stall: the node keeps its sockets and state, and comes back after its lease
    // went to the other node.
    let pid = cluster.nodes[stopped].child.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    for i in 30..60 {
        let u = i % USERS;
        acked.push((
            u,
            cluster
                .message(other, &format!("a{i}"), &format!("c{u}"))
                .await
                .unwrap(),
        ));
    }
    let _ = cluster.decider(&[other]);
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    for i in 60..80 {
        let u = i % USERS;
        acked.push((
            u,
            cluster
                .message(stopped, &format!("a{i}"), &format!("c{u}"))
                .await
                .unwrap(),
        ));
    }
    cluster.all_decided_once(other, USERS, &acked).await;
    assert!(
        !cluster.log(stopped).contains("panicked"),
        "{}",
        cluster.log(stopped)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_takes_its_users_presence_with_it_and_they_get_pushes_again() {
    let mut cluster = Cluster::start(2);
    cluster.visitors(1, 200).await;
    let decider = cluster.decider(&[0, 1]);
    let holder = 1 - decider;
    let mut visitor =
        LiveClient::connect(cluster.base(holder), &cluster.token(holder, "v0").await, "").await;
    visitor.resume(json!({})).await;
    cluster.wait_presence(decider, "v0", "foreground").await;
    // The node holding v0's session dies without a word; its liveness runs out.
    cluster.nodes[holder].child.kill().unwrap();
    cluster.nodes[holder].child.wait().unwrap();
    drop(visitor);
    // Within its liveness (the node TTL): nobody stays present on a dead node.
    cluster.wait_presence(decider, "v0", "away").await;
    let position = cluster.message(decider, "after", "c0").await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let decided = cluster.decisions(decider, "v0").await;
        if let Some(n) = decided.iter().find(|n| n["position"] == position)
            && n["status"] != "pending"
        {
            assert_eq!(n["looking"]["state"], "away", "{n}");
            assert_ne!(n["status"], "suppressed", "{n}");
            break;
        }
        assert!(Instant::now() < deadline, "no decision: {decided:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TCP proxy to PostgreSQL the test can cut: while down it refuses connections and has
/// broken every open one, as a database restart does.
struct Cut {
    port: u16,
    up: tokio::sync::watch::Sender<bool>,
}

impl Cut {
    async fn to(target: String) -> Cut {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (up, _) = tokio::sync::watch::channel(true);
        let state = up.clone();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let mut watch = state.subscribe();
                match listener.take() {
                    Some(l) => {
                        tokio::select! {
                            accepted = l.accept() => {
                                listener = Some(l);
                                let Ok((client, _)) = accepted else { continue };
                                let target = target.clone();
                                let mut down = state.subscribe();
                                tokio::spawn(async move {
                                    let Ok(server) = tokio::net::TcpStream::connect(&target).await else { return };
                                    let (mut client, mut server) = (client, server);
                                    tokio::select! {
                                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                        _ = down.wait_for(|up| !*up) => {}
                                    }
                                });
                            }
                            _ = watch.wait_for(|up| !*up) => {} // drops the listener: refused
                        }
                    }
                    None => {
                        let _ = watch.wait_for(|up| *up).await;
                        listener = Some(
                            tokio::net::TcpListener::bind(("127.0.0.1", port))
                                .await
                                .expect("the proxy's port is free again"),
                        );
                    }
                }
            }
        });
        Cut { port, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_unreachable_a_node_is_not_ready_acknowledges_nothing_and_then_recovers()
{
    // The node reaches PostgreSQL through the proxy: `postgres://user@host:port/db`.
    let url = postgres_url();
    let (head, rest) = url
        .split_once('@')
        .expect("a postgres://user@host:port/db url");
    let (target, db) = rest.split_once('/').expect("a database in the url");
    let cut = Cut::to(target.to_string()).await;
    let proxied = format!("{head}@127.0.0.1:{}/{db}", cut.port);
    let mut cluster = Cluster::start(0);
    cluster.postgres = proxied;
    cluster.add(0);
    cluster.key = cluster.default_key();
    let ready = async |cluster: &Cluster| {
        let r = cluster
            .http
            .get(format!("{}/readyz", cluster.base(0)))
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    };
    let mut acked = vec![cluster.message(0, "before", "c1").await.expect("up")];

    cut.set(false);
    let deadline = Instant::now() + PATIENCE;
    while ready(&cluster).await != 503 {
        assert!(
            Instant::now() < deadline,
            "still ready without its database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..5 {
        if let Some(p) = cluster.message(0, &format!("down-{i}"), "c1").await {
            acked.push(p);
        }
    }
    assert_eq!(
        acked.len(),
        1,
        "nothing acknowledged while the database is away"
    );

    cut.set(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready(&cluster).await != 200 {
        assert!(Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    acked.push(cluster.message(0, "after", "c1").await.expect("recovered"));
    let page = cluster.get(0, "/v1/conversations/c1/events").await;
    let stored: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    for p in &acked {
        assert!(stored.contains(p), "acknowledged {p} is stored: {stored:?}");
    }
}
