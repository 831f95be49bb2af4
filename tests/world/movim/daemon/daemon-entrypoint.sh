#!/bin/sh
# Entrypoint of the movim-daemon stand-in, as the seed's daemon-entrypoint.sh behaves: migrate, then run
# the daemon in the foreground. Arguments are ignored, like the seed's.
set -e

echo "Running migrations"
php vendor/bin/phinx migrate

echo "Running daemon"
php daemon.php start --debug
