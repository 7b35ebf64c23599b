//! A real headless Chromium for the browser tests, driven over WebDriver by its ChromeDriver
//! (`TICKD_TEST_CHROMEDRIVER`; optionally `TICKD_TEST_CHROMIUM`, the browser binary). Shared
//! by `browser` (the cross-site attack) and `console` (the web console end to end).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

/// How long any one wait in the browser may take: generous for a loaded 2-core CI host, and
/// only reached when something is wrong.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A running ChromeDriver on a port of its own, and the browsers it started.
///
/// Dropping it (also when the test panics) asks ChromeDriver to shut down, which quits its
/// browsers, then kills what is left of its process group: no Chromium outlives the test.
pub struct Driver {
    child: Child,
    addr: SocketAddr,
    /// Each browser's profile (a fresh `--user-data-dir`), removed after the processes end.
    profiles: Mutex<Vec<TempDir>>,
}

impl Driver {
    /// Starts `chromedriver` on a free port and waits until it answers `/status`; starts it
    /// again on another port if it exits first (another test took the port meanwhile).
    pub async fn start(chromedriver: &str) -> Driver {
        let client = reqwest::Client::new();
        for _ in 0..3 {
            let addr = free_port();
            let child = Command::new(chromedriver)
                .arg(format!("--port={}", addr.port()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // A group of its own, so that Drop can end the browsers it starts.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {chromedriver}: {e}"));
            let mut driver = Driver {
                child,
                addr,
                profiles: Mutex::new(Vec::new()),
            };
            let status = format!("http://{addr}/status");
            let deadline = Instant::now() + PATIENCE;
            while Instant::now() < deadline && matches!(driver.child.try_wait(), Ok(None)) {
                let answer = client.get(&status).send().await;
                if let Ok(answer) = answer
                    && let Ok(answer) = answer.json::<Value>().await
                    && answer["value"]["ready"] == true
                {
                    return driver;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("{chromedriver} did not answer on any of 3 ports");
    }

    /// A browser session in a profile of its own: headless Chromium with the flags this
    /// machine needs (its network is closed, so nothing may call home), plus `extra` flags.
    pub async fn browser(&self, extra: &[String]) -> Client {
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend_from_slice(extra);
        self.profiles.lock().unwrap().push(profile);
        let mut options = json!({ "args": args });
        if let Some(binary) = std::env::var_os("TICKD_TEST_CHROMIUM").filter(|b| !b.is_empty()) {
            options["binary"] = json!(binary.to_string_lossy());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{}", self.addr))
            .await
            .expect("a Chromium session from ChromeDriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // ChromeDriver's own `/shutdown` quits every session's browser; a kill would orphan them.
        if let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
            let request = format!(
                "GET /shutdown HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.addr
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (the driver, a browser that did not quit).
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let group = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (bound and released: ChromeDriver binds it a moment later).
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The text the browser shows (a JSON answer is shown as text too).
pub async fn page_text(browser: &Client) -> String {
    browser
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
