#!/usr/bin/env bash
# The rules that keep the code's rooms as the README's "Layout of the code" describes them, checked
# by grep so that drift fails the suite instead of waiting for a review. (Clippy checks the rest:
# function length and the one home of the environment and of processes, see clippy.toml.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failed=0
fail() {
	echo "house rule broken: $1" >&2
	printf '%s\n' "$2" >&2
	failed=1
}

# Code lines only: comments and doc comments may name anything.
code() { grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; }

# 1. The core touches nothing: no adapter, command, file system, environment, process, runtime
#    or clock.
hits=$(grep -rnE 'crate::(adapters|commands|doctor|release|stack|context)\b|std::(fs|env|process)\b|\btokio\b|SystemTime|Instant::now' src/core | code || true)
[ -z "$hits" ] || fail "src/core must not reach the world (it is pure)" "$hits"

# 2. Which engine or runner drives a deployment is decided by the adapters (and found once in
#    stack.rs): nothing else names a runner or an engine kind to branch on.
hits=$(grep -rnE 'EngineKind::(Podman|Docker)|KubePlay::new|ComposeTool::|compose::detect|Runner::(Compose|KubePlay)' src --include='*.rs' \
	| grep -vE '^src/(adapters/|stack\.rs)' | code || true)
[ -z "$hits" ] || fail "engine/runner branching outside src/adapters (use the Runner trait and its Commands)" "$hits"

# 3. No file over the budget of code lines (blank lines, comments and the test module at the end
#    of a file not counted): a room that grows past it is cut in two.
budget=520
while IFS= read -r file; do
	n=$(awk '/^#\[cfg\(test\)\]/{exit} { t=$0; gsub(/^[ \t]+/,"",t); if (t=="" || t ~ /^\/\//) next; c++ } END{print c+0}' "$file")
	[ "$n" -le "$budget" ] || fail "$file has $n code lines (budget $budget)" ""
done < <(find src -name '*.rs' | sort)

# 4. Every module says why it exists.
while IFS= read -r file; do
	head -1 "$file" | grep -q '^//!' || fail "$file does not open with a //! line on why it exists" ""
done < <(find src -name '*.rs' -not -path '*/tests.rs' | sort)

# 5. Nothing points at background documents or issue numbers: Movim's contract is
#    docs/movim-contract.md.
hits=$(git grep -nE 'design\.md|shared/|issue [0-9]|#[0-9]{1,3}\b|style\.md' -- . ':!tests/house-rules.sh' || true)
[ -z "$hits" ] || fail "pointers at background documents or issue numbers" "$hits"

[ "$failed" -eq 0 ] && echo "house rules kept"
exit "$failed"
