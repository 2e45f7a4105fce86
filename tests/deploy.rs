//! deploy/kubernetes/ as a test: the manifests parse, agree with each other and with the config
//! they carry — replicas equal `cluster.members`, each pod takes its member number from its
//! host name, the store is on the pod's volume, the probes ask paths the admin API answers, and
//! every secret the config names comes from the Secret.

mod common;

use common::*;
use foldertrack::config::{Config, Sink};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

/// Every manifest, by kind (one document a file).
fn manifests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, doc));
    }
    out
}

fn of_kind(all: &[(String, Value)], kind: &str) -> Value {
    let found: Vec<&Value> = all
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0].clone()
}

/// The config the ConfigMap carries.
fn carried_config(all: &[(String, Value)]) -> (String, Config) {
    let text = of_kind(all, "ConfigMap")["data"]["foldertrack.toml"]
        .as_str()
        .expect("foldertrack.toml in the ConfigMap")
        .to_owned();
    let config: Config = toml::from_str(&text).unwrap();
    (text, config)
}

/// The StatefulSet's one container.
fn container(set: &Value) -> &Value {
    &set["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn the_manifests_agree_with_each_other() {
    let all = manifests();
    let listed: BTreeSet<String> = of_kind(&all, "Kustomization")["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let files: BTreeSet<String> = all
        .iter()
        .filter(|(_, d)| d["kind"] != "Kustomization")
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(listed, files, "kustomization.yaml lists every manifest");

    let set = of_kind(&all, "StatefulSet");
    let service = of_kind(&all, "Service");
    let labels = &set["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&set["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(
        &of_kind(&all, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        labels
    );
    assert_eq!(service["spec"]["clusterIP"], "None", "headless");
    assert_eq!(set["spec"]["serviceName"], service["metadata"]["name"]);

    let pod = &set["spec"]["template"]["spec"];
    let c = container(&set);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
}

#[test]
fn replicas_members_store_admin_and_secrets_fit_the_config() {
    let all = manifests();
    let (_, config) = carried_config(&all);
    let set = of_kind(&all, "StatefulSet");
    let c = container(&set);

    assert_eq!(
        set["spec"]["replicas"].as_u64(),
        Some(u64::from(config.cluster.members())),
        "replicas == cluster.members"
    );
    assert!(config.cluster.member_from_hostname && config.cluster.member.is_none());

    // The store is on the pod's own volume.
    let claim = &set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"];
    let mounts = c["volumeMounts"].as_array().unwrap();
    let mount_of = |volume: &Value| {
        let m = mounts.iter().find(|m| &m["name"] == volume).unwrap();
        m["mountPath"].as_str().unwrap().to_owned()
    };
    assert!(
        config.store.path.starts_with(mount_of(claim)),
        "{:?}",
        config.store.path
    );

    // The config file is where --config points, from the ConfigMap.
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args.iter().position(|a| *a == "--config").unwrap() + 1;
    let file = Path::new(args[at]);
    assert_eq!(file.file_name().unwrap(), "foldertrack.toml");
    let config_volume = set["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == "foldertrack")
        .unwrap();
    assert_eq!(
        Path::new(&mount_of(&config_volume["name"])),
        file.parent().unwrap()
    );

    // The probes and the Service reach the admin API's port.
    let port = c["ports"][0]["containerPort"].as_u64().unwrap();
    assert!(config.admin.listen.ends_with(&format!(":{port}")));
    assert!(config.admin.listen.starts_with("0.0.0.0:"));
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            c[probe]["httpGet"]["port"], c["ports"][0]["name"],
            "{probe}"
        );
    }

    // Every secret the config names is set from the Secret.
    let secret = of_kind(&all, "Secret");
    let env = c["env"].as_array().unwrap();
    let webhook = match &config.sink {
        Sink::Webhook { secret_env, .. } => secret_env.clone(),
        _ => None,
    };
    let named = [
        Some("FOLDERTRACK_EWS_PASSWORD".to_owned()),
        config.admin.token_env.clone(),
        webhook,
    ];
    for name in named.into_iter().flatten() {
        let var = env.iter().find(|e| e["name"] == name.as_str()).unwrap();
        let key = &var["valueFrom"]["secretKeyRef"];
        assert_eq!(key["name"], secret["metadata"]["name"], "{name}");
        assert!(
            secret["stringData"][key["key"].as_str().unwrap()].is_string(),
            "{name}"
        );
    }
}

#[test]
fn the_carried_config_passes_check_config_in_a_pod() {
    let all = manifests();
    let (text, _) = carried_config(&all);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foldertrack.toml");
    std::fs::write(&path, text).unwrap();
    let check = |hostname: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_foldertrack"))
            .args([
                "--config",
                path.to_str().unwrap(),
                "check-config",
                "--offline",
            ])
            .env("HOSTNAME", hostname)
            .env("FOLDERTRACK_EWS_PASSWORD", "x")
            .env("FOLDERTRACK_ADMIN_TOKEN", "0123456789abcdef0123")
            .env("FOLDERTRACK_WEBHOOK_SECRET", "x")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, out) = check("foldertrack-2");
    assert!(ok, "{out}");
    assert!(out.contains("cluster: member 2 of 3 owns"), "{out}");
    let (ok, out) = check("foldertrack-3");
    assert!(
        !ok && out.contains("member 3 does not exist with members = 3"),
        "{out}"
    );
}

#[tokio::test]
async fn the_probed_paths_are_answered_by_the_admin_api() {
    let all = manifests();
    let set = of_kind(&all, "StatefulSet");
    let c = container(&set);
    let agent = Agent::start(&mailboxes(&[(ALICE, &[("Inbox/Customers", None, "")])])).await;
    agent.sim().create_folder(ALICE, "Inbox/Customers").unwrap();
    let running = agent.run().await;
    let http = reqwest::Client::new();
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = c[probe]["httpGet"]["path"].as_str().unwrap();
        let url = format!("{}{path}", running.admin.base());
        let answered = async || {
            http.get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        };
        assert!(
            eventually_async(Duration::from_secs(10), answered).await,
            "{probe} {path}"
        );
    }
    running.stop().await;
}
