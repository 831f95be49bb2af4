<?php
// Why this file exists: the sessions worker of v0.33 and later (up to 8 sessions each), started in
// workers/ as `php -n … sessionsworker.php` (workers/sessionsworker.php @ v0.33, v0.34.1). What it
// does: src/Shim/Worker.php.

require __DIR__ . '/../vendor/autoload.php';

Shim\Worker::main();
