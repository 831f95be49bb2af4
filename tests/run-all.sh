#!/usr/bin/env bash
# The whole test suite of movim-setup, from a fresh machine: builds (or reuses) the test world,
# installs the Rust lint components if missing, then runs the format and lint gates and every
# test — unit, snapshot, CLI and real-world. Nothing is skipped: a missing world fails loudly.
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

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "==> cargo test"
# Real-world tests each run a whole Movim stack; two at a time suit a 2-core machine.
cargo test --all-targets --no-fail-fast "$@" -- --test-threads="${MOVIM_TEST_THREADS:-2}"
echo "==> whole suite passed in $((SECONDS - started)) s"
