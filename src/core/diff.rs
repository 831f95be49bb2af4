//! Differences between a file on disk and what the tool would write, as lines a person reads:
//! doctor shows them for drift, `init` before it changes an existing deployment. Secrets never
//! show: `movim.env` is compared by key, other files holding secrets by name only.

use crate::core::envfile;

/// A short unified-style diff from `old` (on disk) to `new` (what `init` would write): changed
/// lines with `-`/`+`, one line of context around each change as ` `, `…` between distant hunks,
/// at most `max_lines` lines (then a last line saying how many more).
#[must_use]
pub fn line_diff(old: &str, new: &str, max_lines: usize) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table, from the end; deployment files are a few hundred lines.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // (tag, line): ' ' same, '-' only on disk, '+' only rendered.
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 1;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let keep = |k: usize| {
        changed
            .iter()
            .any(|&c| k + CONTEXT >= c && k <= c + CONTEXT)
    };
    let mut out = Vec::new();
    let mut last_kept: Option<usize> = None;
    for (k, (tag, line)) in ops.iter().enumerate() {
        if !keep(k) {
            continue;
        }
        if last_kept.is_some_and(|l| l + 1 < k) {
            out.push("…".to_owned());
        }
        out.push(format!("{tag}{line}"));
        last_kept = Some(k);
    }
    if out.len() > max_lines {
        let more = out.len() - max_lines;
        out.truncate(max_lines);
        out.push(format!("… ({more} more diff line{})", plural(more)));
    }
    out
}

/// What changes in `path` from `old` to `new`, for a person to review: `env` files by key (values
/// of secret keys never shown), other `secret` files by name only, the rest as a [`line_diff`].
#[must_use]
pub fn file_change(
    path: &str,
    old: &str,
    new: &str,
    env: bool,
    secret: bool,
    max_lines: usize,
) -> Vec<String> {
    if env {
        return envfile::env_differences(old, new);
    }
    if secret {
        return vec!["(this file holds secrets: its content is not shown)".to_owned()];
    }
    let mut d = vec![format!("--- {path} (now)"), format!("+++ {path} (new)")];
    d.extend(line_diff(old, new, max_lines));
    d
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_changes_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nC\nd\ne\nf\ng\nh\ni\n";
        assert_eq!(
            line_diff(old, new, 20),
            [" b", "-c", "+C", " d", "…", " h", "+i"]
        );
        assert!(line_diff(old, old, 20).is_empty());
        let long_old: String = (0..50).map(|i| format!("{i}\n")).collect();
        let d = line_diff(&long_old, "", 5);
        assert_eq!(d.len(), 6);
        assert_eq!(d[5], "… (45 more diff lines)");
    }

    #[test]
    fn file_changes_never_show_a_secret() {
        let old = "DB_PASSWORD=0ld-pw-Xy\nDAEMON_URL=https://a.example/\n";
        let new = "DB_PASSWORD=n3w-pw-Zq\nDAEMON_URL=https://b.example/\n";
        for (env, secret) in [(true, true), (false, true)] {
            let shown = file_change("movim.env", old, new, env, secret, 20).join("\n");
            assert!(!shown.contains("-pw-"), "{shown}");
        }
        let env = file_change("movim.env", old, new, true, true, 20).join("\n");
        assert!(
            env.contains("DAEMON_URL") && env.contains("DB_PASSWORD differs"),
            "{env}"
        );
        let plain = file_change("compose.yaml", "a\n", "b\n", false, false, 20);
        assert_eq!(
            plain,
            [
                "--- compose.yaml (now)",
                "+++ compose.yaml (new)",
                "-a",
                "+b"
            ]
        );
    }
}
