<?php
// Why this file exists: the session worker of v0.32 … v0.32.1, started in workers/ as
// `php -n … linker.php <sid>` (workers/linker.php @ v0.32). What it does: src/Shim/Worker.php.

require __DIR__ . '/../vendor/autoload.php';

Shim\Worker::main();
