#!/bin/sh
# Entrypoint of the movim-daemon image: the daemon in the foreground, from the Movim root (its
# children are started with paths relative to it). Arguments are ignored, as the seed's; the
# migrations are a one-shot of their own (`--entrypoint php daemon vendor/bin/phinx migrate`).
set -e
cd /var/www/movim
exec php daemon.php start
