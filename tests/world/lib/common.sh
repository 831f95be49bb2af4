# shellcheck shell=bash
# Small helpers shared by the test world's scripts.

log() {
	printf '[world %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

die() {
	printf '[world] error: %s\n' "$*" >&2
	exit 1
}

# wait_for WHAT SECONDS CMD...: run CMD every half second until it succeeds or SECONDS pass.
wait_for() {
	local what="$1" limit="$2"
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "gave up waiting for $what after ${limit}s"
			return 1
		fi
		sleep 0.5
	done
}

# write_if_changed FILE < content: replace FILE atomically only when its content differs.
write_if_changed() {
	local file="$1" tmp
	tmp="$(mktemp "$file.XXXXXX")"
	cat >"$tmp"
	if cmp -s "$tmp" "$file"; then
		rm -f "$tmp"
	else
		chmod 644 "$tmp"
		mv -f "$tmp" "$file"
	fi
}

# json_str STRING: STRING as a JSON string literal.
json_str() {
	local s="$1"
	s="${s//\\/\\\\}"
	s="${s//\"/\\\"}"
	s="${s//$'\n'/\\n}"
	s="${s//$'\t'/\\t}"
	printf '"%s"' "$s"
}

# toml_ensure FILE SECTION KEY VALUE: set KEY = VALUE under [SECTION] of FILE unless KEY is
# already set there (a value someone chose is kept).
toml_ensure() {
	local file="$1" section="$2" key="$3" value="$4"
	if [ -f "$file" ] && awk -v s="[$section]" -v k="$key" '
		/^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); in_s = ($0 == s); next }
		in_s && $0 ~ "^[[:space:]]*" k "[[:space:]]*=" { found = 1 }
		END { exit !found }' "$file"; then
		return
	fi
	log "setting $key under [$section] in $file"
	local tmp
	tmp="$(mktemp "$file.XXXXXX")"
	if grep -qs "^[[:space:]]*\[$section\][[:space:]]*$" "$file"; then
		awk -v s="[$section]" -v line="$key = $value" '
			{ print }
			/^[[:space:]]*\[/ { t = $0; gsub(/[[:space:]]/, "", t); if (t == s) print line }' "$file" >"$tmp"
	else
		{
			if [ -f "$file" ]; then cat "$file"; fi
			printf '\n[%s]\n%s = %s\n' "$section" "$key" "$value"
		} >"$tmp"
	fi
	chmod 644 "$tmp"
	mv -f "$tmp" "$file"
}
