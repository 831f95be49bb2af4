//! The doctor's report as plain data: findings collected once by `commands::doctor` and rendered
//! twice, as text for a person and as JSON for a script, so the two can never disagree (mise's
//! doctor keeps two code paths; this one does not). No I/O here, so every rendering is unit- and
//! snapshot-tested.
//!
//! # The JSON schema (stable; `schema` changes only when a field changes meaning or goes away)
//!
//! ```text
//! {
//!   "schema": 1,
//!   "tool": {"name": "movim-setup", "version": "0.1.0"},
//!   "dir": "/srv/movim",                       // the deployment directory checked
//!   "status": 0,                               // the exit status: 0 no error, 1 errors
//!   "summary": {"ok": 20, "warn": 1, "error": 2},
//!   "findings": [                              // in check order, areas grouped
//!     {
//!       "id": "container.daemon.running",      // stable, dotted; see commands/doctor.rs
//!       "area": "containers",                  // engine files env images containers database web xmpp host upgrade
//!       "severity": "error",                   // ok | warn | error
//!       "summary": "one line, what is true",
//!       "hint": "the fix, ending with the exact command" | null,
//!       "details": ["supporting lines: a diff, log lines, phinx output"]
//!     }
//!   ]
//! }
//! ```
//!
//! New ids and new keys may appear within schema 1; consumers should ignore what they don't know.

pub use crate::core::diff::line_diff;
use crate::error::ExitStatus;
use serde_json::json;
use std::fmt::Write as _;

/// How bad a finding is. Only `Error` fails the run (exit 1); `Warn` is worth reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Ok,
    Warn,
    Error,
}

impl Severity {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// The parts of a deployment, in the order a person should read about them: what runs the stack
/// first, then what it is made of, then what it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Area {
    Engine,
    Files,
    Env,
    Images,
    Containers,
    Database,
    Web,
    Xmpp,
    Host,
    Upgrade,
}

impl Area {
    pub const ALL: [Self; 10] = [
        Self::Engine,
        Self::Files,
        Self::Env,
        Self::Images,
        Self::Containers,
        Self::Database,
        Self::Web,
        Self::Xmpp,
        Self::Host,
        Self::Upgrade,
    ];

    /// The key in JSON.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Engine => "engine",
            Self::Files => "files",
            Self::Env => "env",
            Self::Images => "images",
            Self::Containers => "containers",
            Self::Database => "database",
            Self::Web => "web",
            Self::Xmpp => "xmpp",
            Self::Host => "host",
            Self::Upgrade => "upgrade",
        }
    }

    /// The heading in text.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Engine => "Engine and compose tool",
            Self::Files => "Deployment files",
            Self::Env => "movim.env",
            Self::Images => "Images",
            Self::Containers => "Containers",
            Self::Database => "Database",
            Self::Web => "Web and websocket",
            Self::Xmpp => "XMPP server",
            Self::Host => "Host",
            Self::Upgrade => "Upgrades",
        }
    }
}

/// One thing doctor looked at, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable and dotted (`env.mode`, `container.daemon.running`): scripts match on it.
    pub id: String,
    pub area: Area,
    pub severity: Severity,
    /// One line saying what is true.
    pub summary: String,
    /// How to fix it, ending with the exact command. Problems always have one.
    pub hint: Option<String>,
    /// Supporting lines (a diff, phinx's output, log lines); never secrets.
    pub details: Vec<String>,
}

impl Finding {
    pub fn new(
        area: Area,
        id: impl Into<String>,
        severity: Severity,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            area,
            severity,
            summary: summary.into(),
            hint: None,
            details: Vec::new(),
        }
    }

    pub fn ok(area: Area, id: impl Into<String>, summary: impl Into<String>) -> Self {
        Self::new(area, id, Severity::Ok, summary)
    }

    pub fn warn(area: Area, id: impl Into<String>, summary: impl Into<String>) -> Self {
        Self::new(area, id, Severity::Warn, summary)
    }

    pub fn error(area: Area, id: impl Into<String>, summary: impl Into<String>) -> Self {
        Self::new(area, id, Severity::Error, summary)
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    #[must_use]
    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }

    #[must_use]
    pub fn details(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.details.extend(lines);
        self
    }
}

/// Everything one doctor run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub tool_version: String,
    /// The deployment directory, as the user named it.
    pub dir: String,
    pub findings: Vec<Finding>,
}

/// What introduces a fix in the text report.
const HINT_PREFIX: &str = "fix: ";

impl Report {
    #[must_use]
    pub fn new(tool_version: impl Into<String>, dir: impl Into<String>) -> Self {
        Self {
            tool_version: tool_version.into(),
            dir: dir.into(),
            findings: Vec::new(),
        }
    }

    pub fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    pub fn extend(&mut self, fs: impl IntoIterator<Item = Finding>) {
        self.findings.extend(fs);
    }

    /// How many findings of `severity`.
    #[must_use]
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The finding with this id, if the run produced one.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    /// 0 when nothing is an error, 1 otherwise (2, "could not run", never comes from a report).
    #[must_use]
    pub fn exit_status(&self) -> ExitStatus {
        if self.count(Severity::Error) > 0 {
            ExitStatus::Failed
        } else {
            ExitStatus::Success
        }
    }

    /// Replaces every occurrence of each secret value by `<redacted>` in every string of the
    /// report. Checks never put secrets in findings; this is the belt to those braces, applied
    /// before anything is rendered. Values shorter than 4 characters are left alone: they would
    /// redact ordinary words and cannot be told from them anyway.
    pub fn redact(&mut self, secrets: &[&str]) {
        let scrub = |s: &mut String| *s = crate::core::secret::scrub(s, secrets);
        for f in &mut self.findings {
            scrub(&mut f.summary);
            if let Some(h) = &mut f.hint {
                scrub(h);
            }
            for d in &mut f.details {
                scrub(d);
            }
        }
    }

    /// Findings grouped by area in reading order, each group in check order.
    fn grouped(&self) -> Vec<(Area, Vec<&Finding>)> {
        Area::ALL
            .iter()
            .filter_map(|&area| {
                let fs: Vec<&Finding> = self.findings.iter().filter(|f| f.area == area).collect();
                (!fs.is_empty()).then_some((area, fs))
            })
            .collect()
    }

    /// The human report: areas as headings, ok lines short, problems numbered with their details
    /// and their fix, and a last line counting them.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = format!("movim-setup {} doctor: {}\n", self.tool_version, self.dir);
        let mut number = 0;
        for (area, findings) in self.grouped() {
            let _ = write!(out, "\n{}\n", area.title());
            for f in findings {
                if f.severity == Severity::Ok {
                    let _ = writeln!(out, "  {:<10} {}", "ok", f.summary);
                    continue;
                }
                number += 1;
                let label = match f.severity {
                    Severity::Error => "ERROR",
                    _ => "warn",
                };
                let pad = " ".repeat(13);
                let _ = writeln!(
                    out,
                    "  {:<10} {} [{}]",
                    format!("{number}. {label}"),
                    f.summary,
                    f.id
                );
                for d in &f.details {
                    let _ = writeln!(out, "{pad}| {d}");
                }
                if let Some(h) = &f.hint {
                    let _ = writeln!(out, "{pad}{HINT_PREFIX}{h}");
                }
            }
        }
        let (ok, warn, error) = (
            self.count(Severity::Ok),
            self.count(Severity::Warn),
            self.count(Severity::Error),
        );
        let verdict = if error > 0 {
            "Movim is not healthy: fix the errors above, then run `movim-setup doctor` again."
        } else if warn > 0 {
            "No errors; read the warnings above."
        } else {
            "Everything checked is healthy."
        };
        let _ = write!(
            out,
            "\n{error} error{}, {warn} warning{}, {ok} ok. {verdict}\n",
            plural(error),
            plural(warn),
        );
        out
    }

    /// The JSON report (schema 1, documented at the top of this module), pretty-printed.
    #[must_use]
    pub fn to_json(&self) -> String {
        let findings: Vec<serde_json::Value> = self
            .grouped()
            .into_iter()
            .flat_map(|(_, fs)| fs)
            .map(|f| {
                json!({
                    "id": f.id,
                    "area": f.area.key(),
                    "severity": f.severity.as_str(),
                    "summary": f.summary,
                    "hint": f.hint,
                    "details": f.details,
                })
            })
            .collect();
        let status = match self.exit_status() {
            ExitStatus::Success => 0,
            _ => 1,
        };
        let doc = json!({
            "schema": 1,
            "tool": {"name": "movim-setup", "version": self.tool_version},
            "dir": self.dir,
            "status": status,
            "summary": {
                "ok": self.count(Severity::Ok),
                "warn": self.count(Severity::Warn),
                "error": self.count(Severity::Error),
            },
            "findings": findings,
        });
        // Serialising a `Value` cannot fail: every key is a string.
        let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report with every shape: ok lines, a warning, errors with details and hints, across
    /// several areas, pushed out of area order.
    fn sample() -> Report {
        let mut r = Report::new("0.1.0", "/srv/movim");
        r.push(Finding::ok(
            Area::Engine,
            "engine.reachable",
            "docker 20.10.24 (API 1.41) at unix:///var/run/docker.sock",
        ));
        r.push(
            Finding::error(
                Area::Containers,
                "container.daemon.running",
                "daemon (movim-daemon-1) is exited with code 0",
            )
            .detail("Movim's daemon exits 0 when migrations are pending or DAEMON_URL is missing")
            .hint("see why, then start it: docker compose -f /srv/movim/compose.yaml -p movim logs --tail 50 daemon"),
        );
        r.push(
            Finding::error(
                Area::Env,
                "env.mode",
                "movim.env is mode 0644: every local user can read the database password",
            )
            .hint("chmod 600 /srv/movim/movim.env"),
        );
        r.push(Finding::ok(
            Area::Engine,
            "compose.tool",
            "docker compose (Compose v2 plugin) 2.40.3",
        ));
        r.push(
            Finding::warn(Area::Xmpp, "xmpp.dns", "example.org does not resolve inside the daemon container")
                .hint("publish an A record or _xmpp-client._tcp SRV record for example.org, then: movim-setup doctor"),
        );
        r.push(Finding::ok(
            Area::Database,
            "db.pgcrypto",
            "pgcrypto is installed",
        ));
        r
    }

    #[test]
    fn exit_status_follows_errors_only() {
        let mut r = Report::new("0.1.0", "/d");
        assert_eq!(r.exit_status(), ExitStatus::Success);
        r.push(Finding::warn(Area::Host, "host.disk", "low"));
        assert_eq!(r.exit_status(), ExitStatus::Success);
        r.push(Finding::error(Area::Host, "host.disk2", "full"));
        assert_eq!(r.exit_status(), ExitStatus::Failed);
    }

    #[test]
    fn json_has_the_documented_schema() {
        let r = sample();
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
        assert_eq!(v["schema"], 1);
        assert_eq!(v["status"], 1);
        assert_eq!(v["summary"], json!({"ok": 3, "warn": 1, "error": 2}));
        let findings = v["findings"].as_array().expect("array");
        assert_eq!(findings.len(), r.findings.len());
        for f in findings {
            for key in ["id", "area", "severity", "summary", "hint", "details"] {
                assert!(f.get(key).is_some(), "{key} missing in {f}");
            }
        }
        // Same grouping as the text: engine first, and both engine findings together.
        assert_eq!(findings[0]["id"], "engine.reachable");
        assert_eq!(findings[1]["id"], "compose.tool");
    }

    #[test]
    fn text_numbers_problems_in_reading_order() {
        let text = sample().to_text();
        let env = text
            .find("  1. ERROR   movim.env")
            .expect("env problem first");
        let daemon = text.find("  2. ERROR   daemon").expect("then containers");
        let xmpp = text.find("  3. warn    example.org").expect("then xmpp");
        assert!(env < daemon && daemon < xmpp, "{text}");
        assert!(
            text.contains("fix: chmod 600 /srv/movim/movim.env"),
            "{text}"
        );
        assert!(text.ends_with("2 errors, 1 warning, 3 ok. Movim is not healthy: fix the errors above, then run `movim-setup doctor` again.\n"), "{text}");
    }

    #[test]
    fn both_renderings_carry_the_same_findings() {
        let r = sample();
        let text = r.to_text();
        let json = r.to_json();
        for f in &r.findings {
            assert!(text.contains(&f.summary), "{} not in text", f.id);
            assert!(json.contains(&f.id), "{} not in JSON", f.id);
        }
    }

    #[test]
    fn secrets_are_scrubbed_everywhere() {
        let mut r = Report::new("0.1.0", "/d");
        r.push(
            Finding::error(
                Area::Database,
                "db.reachable",
                "login as movim with Sup3rSecret failed",
            )
            .detail("password=Sup3rSecret")
            .hint("echo Sup3rSecret"),
        );
        r.redact(&["Sup3rSecret", "", "ab"]);
        let all = format!("{}{}", r.to_text(), r.to_json());
        assert!(!all.contains("Sup3rSecret"), "{all}");
        assert_eq!(all.matches("<redacted>").count(), 6, "{all}");
    }
}
