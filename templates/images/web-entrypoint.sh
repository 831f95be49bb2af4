#!/bin/sh
# Entrypoint of the movim-web image, as nginx's official image does with /etc/nginx/templates: each
# *.template is rendered into /etc/nginx/conf.d with envsubst, substituting only the variables set
# in the environment (nginx's own $uri etc. survive), then CMD runs.
set -eu
for template in /etc/nginx/templates/*.template; do
    [ -e "$template" ] || continue
    out="/etc/nginx/conf.d/$(basename "$template" .template)"
    defined="$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')"
    envsubst "$defined" < "$template" > "$out"
    echo "$0: rendered $template to $out" >&2
done
exec "$@"
