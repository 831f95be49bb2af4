<?php
// Why this file exists: Movim's scripts start with Composer's autoloader. The stand-in has no Composer
// tree, so this loads the one real library Movim's configuration depends on — phpdotenv, from Debian's
// php-vlucas-phpdotenv — and the shim's own classes under src/Shim.

require '/usr/share/php/Dotenv/autoload.php';

spl_autoload_register(function (string $class): void {
    if (str_starts_with($class, 'Shim\\')) {
        require dirname(__DIR__) . '/src/' . str_replace('\\', '/', $class) . '.php';
    }
});
