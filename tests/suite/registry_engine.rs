//! The registry and engine adapters against the real test world: the Distribution
//! registry on 127.0.0.1:5000 and the Docker engine. Scratch images are made with `docker import`
//! and pushed under unique names; containers carry compose labels of a unique project; a `Drop`
//! guard removes everything a test made, so a failing assertion leaves nothing behind.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use crate::support::world;

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use movim_setup::adapters::engine::{Engine, EngineKind, PullProgress};
use movim_setup::adapters::registry::{RegistryClient, RegistryError};
use movim_setup::core::image_ref::ImageRef;
use movim_setup::core::layout::Layout;

/// `<prefix>-<pid>-<n>-<nanos>`: unique across parallel tests and reruns; valid as a container,
/// volume, compose project and repository name.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Removes what a test made (containers, volumes, local images), whatever happened.
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
    /// `http://127.0.0.1:5000/v2/<repo>/manifests/<digest>` of pushed scratch images (the world's
    /// registry allows deletes).
    manifests: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let _ = Command::new("docker").args(args).output();
        };
        for c in &self.containers {
            run(&["rm", "-f", "-v", c]);
        }
        for v in &self.volumes {
            run(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            run(&["image", "rm", "-f", i]);
        }
        for m in &self.manifests {
            let _ = Command::new("curl")
                .args(["-fsS", "-X", "DELETE", m])
                .output();
        }
    }
}

/// Makes a one-file image with `docker import` and pushes it as `registry/repository:tag`;
/// returns the local image id and the digest the registry serves for it. Different `content` gives
/// a different layer, hence a different manifest digest.
fn push_scratch_image(image: &ImageRef, content: &str, cleanup: &mut Cleanup) -> (String, String) {
    let reference = image.to_string();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), content).unwrap();
    let tar = dir.path().join("image.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cf")
        .arg(&tar)
        .arg("marker")
        .status()
        .unwrap();
    assert!(status.success());
    let id = docker(&["import", &tar.to_string_lossy(), &reference]);
    cleanup.images.push(id.clone());
    docker(&["push", &reference]);

    // The engine records the digest the registry answered to the push.
    let digests = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &reference,
    ]);
    let digests: Vec<String> = serde_json::from_str(&digests).unwrap();
    let digest = digests
        .iter()
        .find_map(|d| d.strip_prefix(&format!("{}@", image.name())))
        .unwrap_or_else(|| panic!("no digest for {reference} in {digests:?}"))
        .to_owned();
    cleanup.manifests.push(format!(
        "http://{}/v2/{}/manifests/{digest}",
        image.registry, image.repository
    ));
    (id, digest)
}

/// One `PullProgress::update` call: image, layer, status, current, total.
type Update = (String, String, String, Option<u64>, Option<u64>);

/// Records every progress call.
#[derive(Default)]
struct Recorder {
    updates: Mutex<Vec<Update>>,
    done: Mutex<Vec<String>>,
}

impl PullProgress for Recorder {
    fn update(
        &self,
        image: &str,
        layer: &str,
        status: &str,
        current: Option<u64>,
        total: Option<u64>,
    ) {
        self.updates.lock().unwrap().push((
            image.to_owned(),
            layer.to_owned(),
            status.to_owned(),
            current,
            total,
        ));
    }

    fn done(&self, image: &str) {
        self.done.lock().unwrap().push(image.to_owned());
    }
}

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn resolve_returns_the_digest_the_registry_serves() {
    let w = world::World::get();
    let client = RegistryClient::new(Some(&w.ca_cert)).unwrap();
    for reference in [
        w.library_image("postgres:15"),
        w.movim_image("daemon", "v0.29.2"),
        w.movim_image("web", "v0.29.2"),
    ] {
        let image = ImageRef::parse(&reference).unwrap();
        assert_eq!(
            image.to_string(),
            reference,
            "world references are canonical"
        );
        let digest = client.resolve(&image).await.unwrap();
        assert_eq!(digest, w.digest(&reference), "{reference}");
        // Asking by the digest itself gives it back (and checks the body hashes to it).
        let by_digest = ImageRef::parse(&image.pinned(&digest)).unwrap();
        assert_eq!(client.resolve(&by_digest).await.unwrap(), digest);
    }
}

/// The tag list is exactly the world's tags of the repository; an unknown repository is not
/// found. The client asks for two tags a page, but the world's registry (Debian's distribution)
/// ignores `n` and answers all at once, so following `Link` pages is covered only by the unit test
/// of the header's parsing.
#[tokio::test]
async fn the_tag_list_names_every_tag_of_the_repository() {
    let w = world::World::get();
    let client = RegistryClient::new(None).unwrap().with_tag_page_size(2);
    let daemon = ImageRef::parse(&w.movim_image("daemon", "v0.29.2")).unwrap();
    let mut listed = client.tags(&daemon).await.unwrap();
    listed.sort();
    let prefix = format!("{}:", daemon.name());
    let mut expected: Vec<String> = w
        .images
        .keys()
        .filter_map(|r| r.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    let missing = ImageRef::parse(&format!("{}/no-such/repository:1", w.registry)).unwrap();
    let err = client.tags(&missing).await.unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<RegistryError>(),
            Some(RegistryError::NotFound { .. })
        ),
        "{err:#}"
    );
}

#[tokio::test]
async fn an_unknown_tag_is_not_found_and_names_the_image() {
    let w = world::World::get();
    let client = RegistryClient::new(None).unwrap();
    for reference in [
        w.movim_image("daemon", "v9.9.9-no-such-tag"),
        format!("{}/no-such/repository:1", w.registry),
    ] {
        let err = client
            .resolve(&ImageRef::parse(&reference).unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<RegistryError>(),
                Some(RegistryError::NotFound { .. })
            ),
            "{err:#}"
        );
        let message = err.to_string();
        assert!(message.contains(&reference), "{message}");
        assert!(message.contains("not found at 127.0.0.1:5000"), "{message}");
    }
}

/// A mutable tag moves on at the registry: resolve follows it, and a pull by the digest pinned
/// before still yields the old image.
#[tokio::test]
async fn a_repointed_tag_moves_resolve_but_not_a_pinned_pull() {
    let w = world::World::get();
    let mut cleanup = Cleanup::default();
    let repository = format!("{}/scratch/{}", w.registry, unique("repoint"));
    let reference = format!("{repository}:t");
    let client = RegistryClient::new(None).unwrap();
    let image = ImageRef::parse(&reference).unwrap();

    let (old_id, old) = push_scratch_image(&image, "old", &mut cleanup);
    assert_eq!(client.resolve(&image).await.unwrap(), old);

    let (new_id, new) = push_scratch_image(&image, "new", &mut cleanup);
    assert_ne!(old, new);
    assert_eq!(
        client.resolve(&image).await.unwrap(),
        new,
        "resolve follows the tag"
    );

    // Forget the old image locally so the pull must fetch it from the registry.
    docker(&["image", "rm", "-f", &old_id]);
    let engine = Engine::connect(Some(EngineKind::Docker)).await.unwrap();
    assert!(!engine.has_image(&image.by_digest(&old)).await.unwrap());
    engine
        .pull(&image, &old, &Recorder::default())
        .await
        .unwrap();
    assert!(engine.has_image(&image.by_digest(&old)).await.unwrap());
    let pulled_id = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &image.by_digest(&old),
    ]);
    assert_eq!(pulled_id, old_id, "the pinned digest is the old image");
    assert_ne!(pulled_id, new_id);
}

// ---------------------------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn connect_negotiates_the_api_version_and_detects_docker() {
    let _ = world::World::get();
    let engine = Engine::connect(Some(EngineKind::Docker)).await.unwrap();
    assert_eq!(engine.kind(), EngineKind::Docker);
    // The machines run Docker 20.10 (API 1.41); bollard's own default is newer.
    assert_eq!(engine.api_version(), "1.41");
    assert!(
        engine.version().starts_with("20.10"),
        "{}",
        engine.version()
    );
    assert_eq!(engine.endpoint(), "unix:///var/run/docker.sock");
}

#[tokio::test]
async fn an_unreachable_engine_names_the_socket_and_how_to_start_it() {
    let err = Engine::connect_to("unix:///nonexistent.sock", None)
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("/nonexistent.sock"), "{message}");
    assert!(message.contains("systemctl start docker"), "{message}");
    assert!(message.contains("podman system service"), "{message}");

    // A socket that exists but where nothing answers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let err = Engine::connect_to(&format!("unix://{}", path.display()), None)
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("dead.sock"), "{message}");
    assert!(message.contains("systemctl start docker"), "{message}");
}

#[tokio::test]
async fn pull_by_digest_reports_progress_and_leaves_the_image() {
    let w = world::World::get();
    let mut cleanup = Cleanup::default();
    let repository = format!("{}/scratch/{}", w.registry, unique("pull"));
    let reference = format!("{repository}:v1");
    let content = "x".repeat(256 * 1024);
    let image = ImageRef::parse(&reference).unwrap();
    let (id, digest) = push_scratch_image(&image, &content, &mut cleanup);
    docker(&["image", "rm", "-f", &id]);

    let engine = Engine::connect(None).await.unwrap();
    let wanted = image.by_digest(&digest);
    assert!(!engine.has_image(&wanted).await.unwrap());

    let progress = Recorder::default();
    engine.pull(&image, &digest, &progress).await.unwrap();
    assert!(engine.has_image(&wanted).await.unwrap());
    assert_eq!(*progress.done.lock().unwrap(), [wanted.as_str()]);
    let updates = progress.updates.lock().unwrap().clone();
    assert!(updates.iter().all(|(i, ..)| *i == wanted), "{updates:?}");
    assert!(
        updates
            .iter()
            .any(|(_, layer, status, ..)| !layer.is_empty() && status == "Pull complete"),
        "a layer was fetched: {updates:?}"
    );
    assert!(
        updates
            .iter()
            .any(|(.., current, total)| current.is_some() && total.is_some()),
        "byte counts were reported: {updates:?}"
    );
    // The engine was not asked to tag anything: only the digest names the image.
    let tags = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoTags}}",
        &wanted,
    ]);
    assert_eq!(tags, "[]");

    // A world image pulls the same way (already present: progress still ends with done).
    let daemon = ImageRef::parse(&w.movim_image("daemon", "v0.29.2")).unwrap();
    let daemon_digest = w.digest(&daemon.to_string());
    engine
        .pull(&daemon, daemon_digest, &Recorder::default())
        .await
        .unwrap();
    assert!(
        engine
            .has_image(&daemon.by_digest(daemon_digest))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn pulling_a_digest_the_registry_lacks_fails_naming_it() {
    let w = world::World::get();
    let engine = Engine::connect(None).await.unwrap();
    let image = ImageRef::parse(&w.library_image("postgres:15")).unwrap();
    let missing = format!("sha256:{}", "0".repeat(64));
    let err = engine
        .pull(&image, &missing, &Recorder::default())
        .await
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&image.by_digest(&missing)), "{message}");
}

/// Containers of one throwaway compose project, started straight with `docker run` and the labels
/// compose (and podman-compose) put on them.
struct Project {
    name: String,
    image: String,
    cleanup: Cleanup,
}

impl Project {
    fn new() -> Self {
        let w = world::World::get();
        Self {
            name: unique("movim-engine"),
            image: w.library_image("debian:bookworm"),
            cleanup: Cleanup::default(),
        }
    }

    /// Starts `service` running `script` with extra `docker run` flags; returns the container name.
    fn run(&mut self, service: &str, flags: &[&str], script: &str) -> String {
        let name = format!("{}-{service}-1", self.name);
        self.cleanup.containers.push(name.clone());
        let project_label = format!("com.docker.compose.project={}", self.name);
        let service_label = format!("com.docker.compose.service={service}");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            &project_label,
            "--label",
            &service_label,
        ];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&self.image, "sh", "-c", script]);
        docker(&args);
        name
    }
}

#[allow(clippy::too_many_lines)] // a scenario on one stack, read as one story
#[tokio::test]
async fn reads_a_projects_containers_logs_and_runs_commands_in_them() {
    let mut project = Project::new();
    let volume = unique("movim-engine-vol");
    project.cleanup.volumes.push(volume.clone());
    let mount = format!("{volume}:/data");
    let healthy = project.run(
        "fpm",
        &[
            "-v",
            &mount,
            "--health-cmd",
            "test -f /tmp/ready",
            "--health-interval",
            "1s",
            "--health-retries",
            "30",
        ],
        "echo hello-out; echo hello-err >&2; sleep 2; touch /tmp/ready; exec sleep 300",
    );
    let plain = project.run(
        "web",
        &["-v", &format!("{volume}:/ro:ro")],
        "exec sleep 300",
    );
    let exited = project.run("daemon", &[], "echo bye; exit 0");

    let engine = Engine::connect(None).await.unwrap();
    assert!(engine.volume_exists(&volume).await.unwrap());
    assert!(
        !engine
            .volume_exists(&unique("no-such-volume"))
            .await
            .unwrap()
    );

    let info = engine
        .wait_healthy(&healthy, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(info.health.as_deref(), Some("healthy"));
    assert_eq!(info.name, healthy);
    assert_eq!(info.service.as_deref(), Some("fpm"));
    assert_eq!(info.status, "running");
    assert!(info.running && info.exit_code.is_none() && !info.oom_killed);
    assert_eq!(info.image, project.image);
    assert!(info.started_at.is_some());
    let data = info
        .mounts
        .iter()
        .find(|m| m.destination == "/data")
        .unwrap();
    assert_eq!(data.volume_name.as_deref(), Some(volume.as_str()));
    assert!(data.read_write);
    assert!(
        info.ips.iter().any(|(network, _)| network == "bridge"),
        "{:?}",
        info.ips
    );

    // Without a healthcheck: up for two seconds is enough.
    let started = Instant::now();
    let info = engine
        .wait_healthy(&plain, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(info.health, None);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        !info.mounts.iter().any(|m| m.read_write),
        "{:?}",
        info.mounts
    );

    // Every container of the project, the stopped one included, by service.
    let containers = engine
        .service_containers(&project.name, Layout::Compose)
        .await
        .unwrap();
    let services: Vec<_> = containers
        .iter()
        .map(|c| (c.service.as_deref().unwrap(), c.name.as_str()))
        .collect();
    assert_eq!(
        services,
        [
            ("daemon", exited.as_str()),
            ("fpm", healthy.as_str()),
            ("web", plain.as_str())
        ]
    );
    assert_eq!(containers[0].status, "exited");
    assert_eq!(containers[0].exit_code, Some(0));
    assert!(!containers[0].running);
    assert!(
        engine
            .service_containers(&unique("no-such-project"), Layout::Compose)
            .await
            .unwrap()
            .is_empty()
    );

    let logs = engine.logs_tail(&healthy, 10).await.unwrap();
    assert!(
        logs.contains("hello-out") && logs.contains("hello-err"),
        "{logs}"
    );
    assert_eq!(engine.logs_tail(&exited, 1).await.unwrap(), "bye\n");

    let (code, output) = engine
        .exec(&healthy, &["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await
        .unwrap();
    assert_eq!(code, 3);
    assert!(
        output.contains("out\n") && output.contains("err\n"),
        "{output}"
    );
    let (code, output) = engine.exec(&healthy, &["id", "-u"]).await.unwrap();
    assert_eq!(
        (code, output.as_str()),
        (0, "0\n"),
        "the image's default user"
    );

    let err = engine
        .inspect(&unique("no-such-container"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("there is no container"), "{err:#}");
}

#[tokio::test]
async fn wait_healthy_fails_fast_on_exit_and_reports_the_last_check_on_timeout() {
    let mut project = Project::new();
    let exits = project.run("daemon", &[], "sleep 1; exit 0");
    let unhealthy = project.run(
        "web",
        &[
            "--health-cmd",
            "echo database not ready; exit 1",
            "--health-interval",
            "1s",
        ],
        "exec sleep 300",
    );
    let engine = Engine::connect(None).await.unwrap();

    let started = Instant::now();
    let err = engine
        .wait_healthy(&exits, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "fails fast, not at the timeout"
    );
    let message = err.to_string();
    assert!(message.contains(&exits), "{message}");
    assert!(message.contains("service daemon"), "{message}");
    assert!(message.contains("exit code 0"), "{message}");
    assert!(message.contains("migrations are pending"), "{message}");

    let err = engine
        .wait_healthy(&unhealthy, Duration::from_secs(5))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("not healthy after 5s"), "{message}");
    assert!(message.contains("database not ready"), "{message}");
}

/// The path of a database backup and restore: stdout streamed to a file, a file streamed to stdin.
#[tokio::test]
async fn exec_streams_stdout_to_a_file_and_a_file_into_stdin() {
    let mut project = Project::new();
    let db = project.run("postgres", &[], "exec sleep 300");
    let engine = Engine::connect(None).await.unwrap();
    engine
        .wait_healthy(&db, Duration::from_secs(30))
        .await
        .unwrap();

    // ~8 MB of binary output, more than any single frame or buffer.
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.bin");
    let file = tokio::fs::File::create(&dump).await.unwrap();
    let (code, stderr) = engine
        .exec_stream_stdout(
            &db,
            &[
                "sh",
                "-c",
                "head -c 8000000 /dev/urandom | tee /tmp/sent | cat; echo done >&2",
            ],
            file,
        )
        .await
        .unwrap();
    assert_eq!((code, stderr.as_str()), (0, "done\n"));
    assert_eq!(std::fs::metadata(&dump).unwrap().len(), 8_000_000);
    let (_, sent) = engine.exec(&db, &["sha256sum", "/tmp/sent"]).await.unwrap();
    let local = Command::new("sha256sum").arg(&dump).output().unwrap();
    assert_eq!(
        sent.split_whitespace().next(),
        String::from_utf8_lossy(&local.stdout)
            .split_whitespace()
            .next(),
        "the file holds exactly what the command wrote"
    );

    // And back in: stdin ends when the file does.
    let source = tokio::fs::File::open(&dump).await.unwrap();
    let (code, output) = engine
        .exec_stream_stdin(
            &db,
            &[
                "sh",
                "-c",
                "cat > /tmp/back && cmp /tmp/sent /tmp/back && wc -c < /tmp/back",
            ],
            source,
        )
        .await
        .unwrap();
    assert_eq!((code, output.trim()), (0, "8000000"));

    // A command that reads only the start and succeeds (as `pg_restore --list` reads only a
    // dump's table of contents) is a success, and feeding stops when it ends.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 64 << 20]).unwrap(); // more than any pipe or socket buffers
    let source = tokio::fs::File::open(&big).await.unwrap();
    let started = std::time::Instant::now();
    let (code, output) = engine
        .exec_stream_stdin(
            &db,
            &["sh", "-c", "head -c 16 > /dev/null; echo read"],
            source,
        )
        .await
        .unwrap();
    assert_eq!((code, output.trim()), (0, "read"));
    eprintln!(
        "a reader of 16 bytes of 64 MiB returned after {:?}",
        started.elapsed()
    );

    // A command that fails reports its exit code and its stderr.
    let (code, stderr) = engine
        .exec_stream_stdout(
            &db,
            &["sh", "-c", "echo partial; echo boom >&2; exit 4"],
            tokio::io::sink(),
        )
        .await
        .unwrap();
    assert_eq!((code, stderr.as_str()), (4, "boom\n"));
}

// ---------------------------------------------------------------------------------------------
// Podman (its Docker-compatible API, as `podman system service` serves it)
// ---------------------------------------------------------------------------------------------

/// `podman system service` on a private socket, stopped (by its pid) on drop.
struct PodmanService {
    child: std::process::Child,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl PodmanService {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let endpoint = format!("unix://{}", dir.path().join("podman.sock").display());
        let child = Command::new("podman")
            .args(["system", "service", "--time=0", &endpoint])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("podman is part of the test world (tests/world/provision.sh installs it)");
        let service = Self {
            child,
            endpoint,
            dir,
        };
        let socket = service.dir.path().join("podman.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "podman's socket never appeared");
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a Podman test made in Podman's own store.
struct PodmanLeftovers {
    container: String,
    image: String,
}

impl Drop for PodmanLeftovers {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", &self.container])
            .output();
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

#[tokio::test]
async fn podman_is_detected_and_pulls_and_lists_like_docker() {
    let w = world::World::get();
    let podman = PodmanService::start();
    let engine = Engine::connect_to(&podman.endpoint, Some(EngineKind::Podman))
        .await
        .unwrap();
    assert_eq!(engine.kind(), EngineKind::Podman);
    // Podman 4.3 answers the Docker-compatible API as 1.41.
    assert_eq!(engine.api_version(), "1.41");

    // Pull by digest; Podman records RepoDigests in its own spelling, which the check accepts.
    let mut cleanup = Cleanup::default();
    let repository = format!("{}/scratch/{}", w.registry, unique("podman"));
    let reference = format!("{repository}:v1");
    let image = ImageRef::parse(&reference).unwrap();
    let (_, digest) = push_scratch_image(&image, "podman", &mut cleanup);
    let wanted = image.by_digest(&digest);
    let project = unique("movim-engine-podman");
    let name = format!("{project}-daemon-1");
    let _remove = PodmanLeftovers {
        container: name.clone(),
        image: wanted.clone(),
    };
    let progress = Recorder::default();
    engine.pull(&image, &digest, &progress).await.unwrap();
    assert!(engine.has_image(&wanted).await.unwrap());
    assert_eq!(*progress.done.lock().unwrap(), [wanted.as_str()]);

    // podman-compose labels containers as compose does; a labelled container is found.
    let podman_cmd = |args: &[&str]| {
        let out = Command::new("podman").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    podman_cmd(&[
        "create",
        "--name",
        &name,
        "--label",
        &format!("com.docker.compose.project={project}"),
        "--label",
        "com.docker.compose.service=daemon",
        &wanted,
        "/marker",
    ]);
    let containers = engine
        .service_containers(&project, Layout::Compose)
        .await
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0].name, name);
    assert_eq!(containers[0].service.as_deref(), Some("daemon"));
    assert!(!containers[0].running);
}
