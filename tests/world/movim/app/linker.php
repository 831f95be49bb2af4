<?php
// Why this file exists: the session worker of v0.29.2 … v0.31, which the daemon starts from the Movim
// root as `php -n … linker.php <sid>` (linker.php @ v0.29.2, v0.30). What it does: src/Shim/Worker.php.

require __DIR__ . '/vendor/autoload.php';

Shim\Worker::main();
