#!/usr/bin/env bash
# Like the official prosody image: run prosody/prosodyctl as user prosody, and register
# $LOCAL@$DOMAIN with $PASSWORD when all three are given.
set -eo pipefail

if [ "$1" = prosody ] || [ "$1" = prosodyctl ]; then
	if [ "$(id -u)" = 0 ]; then
		mkdir -p /var/run/prosody
		chown prosody:prosody /var/run/prosody /var/lib/prosody
		if [ -n "${LOCAL:-}" ] && [ -n "${PASSWORD:-}" ] && [ -n "${DOMAIN:-}" ]; then
			setpriv --reuid=prosody --regid=prosody --init-groups \
				prosodyctl register "$LOCAL" "$DOMAIN" "$PASSWORD"
		fi
		exec setpriv --reuid=prosody --regid=prosody --init-groups "$@"
	fi
fi

exec "$@"
