//! Headless Chromium driven through its WebDriver (Debian's chromedriver), for the
//! console tests: start, wait for what the page shows, click, type, take screenshots.

use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// A chromedriver process and one browser session; both end when this is dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    screenshots: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium outlives a killed chromedriver: the driver leads a process group of
        // its own, and the whole group goes (a test that panicked never closed it).
        let _ = Command::new("kill")
            .args(["-KILL", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session sized
    /// like a landscape tablet. Screenshots go to `docs/console/` when
    /// `MCX_UPDATE_SCREENSHOTS=1`, else to a temporary directory.
    pub async fn start() -> Self {
        let (chromium, chromedriver) = crate::support::chromium_and_driver();
        let port = crate::federation::free_ports(1);
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        crate::federation::eventually("chromedriver answers", || async {
            reqwest::get(format!("{url}/status")).await.ok()
        })
        .await;
        let profile = tempfile::tempdir().expect("a browser profile directory");
        // Without the background-networking flags Chromium keeps trying to reach Google
        // from a machine with no outside network.
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,960",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::rustls()
            .expect("a WebDriver client")
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a Chromium session through chromedriver");
        let screenshots = if std::env::var_os("MCX_UPDATE_SCREENSHOTS").is_some() {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/console")
        } else {
            std::env::temp_dir().join(format!("mcx-console-{}", std::process::id()))
        };
        std::fs::create_dir_all(&screenshots).expect("the screenshot directory");
        Browser {
            client,
            driver,
            _profile: profile,
            screenshots,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    /// The text of the first element matching `css`, once `ready` holds for it.
    pub async fn wait_for(&self, what: &str, css: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut last = String::from("(no such element)");
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && let Ok(text) = element.text().await
            {
                if ready(&text) {
                    return text;
                }
                last = text;
            }
            if Instant::now() > deadline {
                let message = self.text("#message").await;
                panic!(
                    "{what}: '{css}' shows '{last}' after 20 s (the console's message: '{message}')"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, what: &str, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self
            .client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|found| !found.is_empty())
        {
            assert!(Instant::now() < deadline, "{what}: '{css}' is still shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Clicks the first element matching `css`; found again if a live refresh replaced
    /// it between finding and clicking.
    pub async fn click(&self, css: &str) {
        let mut tries = 0;
        loop {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("'{css}' is on the page: {e}"));
            match element.click().await {
                Ok(()) => return,
                Err(fantoccini::error::CmdError::Standard(e))
                    if e.error == fantoccini::error::ErrorStatus::StaleElementReference
                        && tries < 5 =>
                {
                    tries += 1;
                }
                Err(e) => panic!("'{css}' can be clicked: {e}"),
            }
        }
    }

    /// Replaces an input's text, as a user typing it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("'{css}' is on the page: {e}"));
        input.clear().await.expect("the input clears");
        input.send_keys(text).await.expect("the input takes keys");
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("'{css}' is on the page: {e}"))
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("'{css}' offers '{value}': {e}"));
    }

    /// Goes to a page of the console without reloading it (as its links do).
    pub async fn open(&self, hash: &str) {
        self.client
            .execute("location.hash = arguments[0];", vec![hash.into()])
            .await
            .expect("the hash changes");
    }

    /// Presses Enter in an input, as a keyboard user submits a form.
    pub async fn press_enter(&self, css: &str) {
        let enter = char::from(fantoccini::key::Key::Enter).to_string();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("'{css}' is on the page: {e}"))
            .send_keys(&enter)
            .await
            .expect("the input takes Enter");
    }

    /// An attribute of the first element matching `css`.
    pub async fn attribute(&self, css: &str, name: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("'{css}' is on the page: {e}"))
            .attr(name)
            .await
            .expect("the attribute can be read")
            .unwrap_or_else(|| panic!("'{css}' has '{name}'"))
    }

    /// What keyboard and screen-reader users need of the page as it is now: every control
    /// has a name and can take focus, every table has a caption and column headers, and
    /// the page says which part of the navigation is current.
    pub async fn assert_accessible(&self, page: &str) {
        let faults = self.accessibility_faults().await;
        assert!(faults.is_empty(), "{page}: accessibility: {faults:?}");
    }

    /// What `assert_accessible` finds wrong with the page as it is now.
    pub async fn accessibility_faults(&self) -> Vec<String> {
        let script = r#"
            const faults = [];
            const named = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label')
                || el.getAttribute('aria-labelledby') || (el.textContent || '').trim();
            for (const el of document.querySelectorAll('input, select, textarea, button, a[href]')) {
                if (!named(el)) faults.push(`${el.tagName.toLowerCase()} without a name: ${el.outerHTML.slice(0, 80)}`);
                if (el.tabIndex < 0) faults.push(`${el.tagName.toLowerCase()} out of the tab order`);
            }
            for (const t of document.querySelectorAll('table')) {
                if (!t.querySelector('caption')) faults.push('a table without a caption');
                if (!t.querySelector('thead th[scope=col]')) faults.push('a table without column headers');
            }
            for (const svg of document.querySelectorAll('main svg')) {
                if (!svg.getAttribute('aria-label')) faults.push('a picture without a text alternative');
            }
            if (!document.querySelector('#nav [aria-current=page]') && !document.querySelector('#nav[hidden]')) faults.push('no current page in the navigation');
            if (!document.querySelector('main h1')) faults.push('no heading');
            return faults;
        "#;
        let faults = self
            .client
            .execute(script, vec![])
            .await
            .expect("the check runs");
        serde_json::from_value(faults).expect("a list of faults")
    }

    /// Runs a script in the page.
    pub async fn run(&self, script: &str) {
        self.client
            .execute(script, vec![])
            .await
            .expect("the script runs");
    }

    /// Resizes the window (a tablet is 820 × 1180 in portrait).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("the window resizes");
    }

    /// Marks the loaded document, to tell later whether the page was reloaded.
    pub async fn mark_document(&self) {
        self.client
            .execute("window.mcxTestMark = 'unchanged';", vec![])
            .await
            .expect("the script runs");
    }

    pub async fn document_marked(&self) -> bool {
        self.client
            .execute("return window.mcxTestMark === 'unchanged';", vec![])
            .await
            .expect("the script runs")
            .as_bool()
            .unwrap_or(false)
    }

    /// Ends the browser session: chromedriver closes Chromium.
    pub async fn close(self) {
        let client = self.client.clone();
        let _ = client.close().await;
    }

    /// Saves a screenshot of the window as `<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::write(self.screenshots.join(format!("{name}.png")), png)
            .expect("the screenshot is written");
    }
}
